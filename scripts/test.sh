#!/usr/bin/env bash
# Set-up, build and every test: the command CI runs (.ci/run) and the README's second command.
#   scripts/test.sh            installs packages, builds the release preset (warnings are errors),
#                              runs all tests, then most unit tests again under ASan/UBSan
#   MOECAP_SKIP_SETUP=1        skips the package installation
#   MOECAP_SKIP_SANITIZE=1     skips the ASan/UBSan pass (and the fuzzing, which is part of it)
#   MOECAP_SKIP_FUZZ=1         skips the short libFuzzer run (MOECAP_FUZZ_SECONDS per target, 10)
#   MOECAP_IMAGES=1            also builds the container images and runs a cluster from them
#                              (tests/e2e/images_test.py: minutes more; setup installs buildah
#                              and debootstrap where no docker or podman is there)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="$(nproc)"
start=$(date +%s)

if [ "${MOECAP_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi

echo "== build (release, -Werror)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"

echo "== tests (release)"
# The images test runs on its own at the end (MOECAP_IMAGES=1): it needs both cores for minutes.
ctest --preset release -j "$jobs" --timeout 300 -LE images

if [ "${MOECAP_SKIP_SANITIZE:-0}" != "1" ]; then
  # One sanitizer tree (preset debug-asan: clang) holds the unit tests CI runs again under
  # ASan/UBSan and the libFuzzer targets, which link its instrumented libraries. Without clang's
  # libFuzzer runtime: gcc's sanitizers and no fuzzing.
  asan_args=(-DMOECAP_FUZZ_SECONDS="${MOECAP_FUZZ_SECONDS:-10}")
  targets=(moecap_asan_unit_tests)
  fuzz=1
  if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
      clang++ -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1; then
    echo "== no clang++ with libFuzzer (scripts/setup.sh installs clang, libclang-rt-14-dev):" \
         "the sanitizer pass builds with gcc, and fuzzing is skipped"
    asan_args+=(-DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ -DMOECAP_FUZZ=OFF)
    fuzz=0
  elif [ "${MOECAP_SKIP_FUZZ:-0}" = "1" ]; then
    echo "== fuzz: skipped (MOECAP_SKIP_FUZZ=1)"
    asan_args+=(-DMOECAP_FUZZ=OFF)
    fuzz=0
  else
    targets+=(moecap_fuzz_targets)
  fi
  echo "== unit tests under AddressSanitizer + UBSan (label asan: tests/CMakeLists.txt says which)"
  cmake --preset debug-asan "${asan_args[@]}" >/dev/null
  cmake --build --preset debug-asan -j "$jobs" --target "${targets[@]}"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --preset debug-asan -j "$jobs" -L asan --timeout 300
  if [ "$fuzz" = "1" ]; then
    # The eight libFuzzer targets (tests/fuzz/: records_parser, serving_result, plan_parser,
    # model_yaml, hardware_yaml, hf_config, input_file: gzip, accuracy_reader), each for a few
    # seconds from its seed corpus.
    echo "== fuzz (libFuzzer + ASan/UBSan, ${MOECAP_FUZZ_SECONDS:-10} s per target)"
    ctest --test-dir build/debug-asan -L fuzz -j "$jobs" --output-on-failure
  fi
fi

if [ "${MOECAP_IMAGES:-0}" = "1" ]; then
  echo "== container images: built and run (scripts/build-images.sh, tests/e2e/images_test.py)"
  MOECAP_IMAGES=1 ctest --preset release -L images
fi

echo "== all tests passed in $(( $(date +%s) - start )) s"
