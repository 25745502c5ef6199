#!/usr/bin/env bash
# Set-up, build and every test: the command CI runs (.ci/run) and the README's second command.
#   scripts/test.sh            installs packages, builds the release preset (warnings are errors),
#                              runs all tests, then most unit tests again under ASan/UBSan
#   MOECAP_SKIP_SETUP=1        skips the package installation
#   MOECAP_SKIP_SANITIZE=1     skips the ASan/UBSan pass
#   MOECAP_SKIP_FUZZ=1         skips the short libFuzzer run (MOECAP_FUZZ_SECONDS per target, 10)
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
ctest --preset release -j "$jobs" --timeout 300

if [ "${MOECAP_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== unit tests under AddressSanitizer + UBSan (label asan: tests/CMakeLists.txt says which)"
  cmake --preset debug-asan >/dev/null
  cmake --build --preset debug-asan -j "$jobs" --target moecap_asan_unit_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --preset debug-asan -j "$jobs" -L asan --timeout 300
fi

if [ "${MOECAP_SKIP_FUZZ:-0}" = "1" ]; then
  echo "== fuzz: skipped (MOECAP_SKIP_FUZZ=1)"
elif ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    clang++ -x c++ -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
  echo "== fuzz: skipped (no clang++ with libFuzzer; scripts/setup.sh installs clang, libclang-rt-14-dev)"
else
  # The eight libFuzzer targets (tests/fuzz/: records_parser, serving_result, plan_parser,
  # model_yaml, hardware_yaml, hf_config, input_file: gzip, accuracy_reader), each for a few
  # seconds from its seed corpus.
  echo "== fuzz (libFuzzer + ASan/UBSan, ${MOECAP_FUZZ_SECONDS:-10} s per target)"
  fuzz_start=$(date +%s)
  cmake --preset fuzz -DMOECAP_FUZZ_SECONDS="${MOECAP_FUZZ_SECONDS:-10}" >/dev/null
  cmake --build --preset fuzz -j "$jobs" --target moecap_fuzz_targets
  ctest --test-dir build/fuzz -L fuzz -j "$jobs" --output-on-failure
  echo "== fuzz step took $(( $(date +%s) - fuzz_start )) s"
fi

echo "== all tests passed in $(( $(date +%s) - start )) s"
