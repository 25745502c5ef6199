#!/usr/bin/env bash
# Set-up, build and every test: the command CI runs (.ci/run) and the README's second command.
#   scripts/test.sh            installs packages, builds the release preset (warnings are errors),
#                              runs all tests, then the unit tests again under ASan/UBSan
#   MOECAP_SKIP_SETUP=1        skips the package installation
#   MOECAP_SKIP_SANITIZE=1     skips the ASan/UBSan pass
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
  echo "== unit tests under AddressSanitizer + UBSan"
  cmake --preset debug-asan >/dev/null
  cmake --build --preset debug-asan -j "$jobs" --target moecap_unit_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --preset debug-asan -j "$jobs" -L unit --timeout 300
fi

echo "== all tests passed in $(( $(date +%s) - start )) s"
