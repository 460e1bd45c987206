#!/usr/bin/env bash
# test.sh - the one test command (README.md, .ci/run): installs dependencies, builds with
# ASan+UBSan and warnings as errors, checks formatting, runs unit and integration tests, and runs
# the libFuzzer targets briefly when clang is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

"$root/scripts/install-deps.sh"

echo "== format check"
bad=()
while IFS= read -r f; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -path ./build -prune -o -name '*.[ch]' -print)
if [ ${#bad[@]} -gt 0 ]; then
    echo "not clang-formatted: ${bad[*]}" >&2
    exit 1
fi

echo "== build (ASan+UBSan, -Werror)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXDCR_SANITIZE=ON \
    -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build build/test -j"$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit and integration tests"
ctest --test-dir build/test --output-on-failure -L 'unit|integration' -j"$jobs" \
    --timeout 900

if command -v clang-14 >/dev/null 2>&1; then
    echo "== fuzz targets (brief)"
    CC=clang-14 cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXDCR_FUZZ=ON \
        -DXDCR_SANITIZE=ON -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
    cmake --build build/fuzz -j"$jobs" --target xdcr_fuzz_all
    ctest --test-dir build/fuzz --output-on-failure -L fuzz
else
    echo "== fuzz targets skipped: clang-14 not installed"
fi
echo "== all tests passed"
