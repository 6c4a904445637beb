#!/usr/bin/env bash
# Builds the CPU engine with a sanitizer and runs tests under it; exits non-zero on any report.
#   tools/sanitize.sh address|thread [ctest arguments...]
#
#   address  build-asan/: AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer over the
#            whole ctest suite.
#   thread   build-tsan/: ThreadSanitizer over the tests labelled `threads` — the CPU kernels and
#            their thread pool, the model, the engine loop and the loom binary. The rest of the
#            suite never starts a thread, so TSan has nothing to look at there; only those tests
#            and what they run are built (target tests_threads).
#
# Both build with LOOM_CUDA=OFF at -O1 -g1 (asserts on) and LOOM_SANITIZE=<mode>, which puts the
# sanitizer on every target, plugins included (cmake/LoomSanitize.cmake). Every report stops the
# process that made it (halt_on_error=1) and is written under <build>/sanitizer-reports/; the
# script prints whatever is there and fails, so a report from a child process (the loom binary
# that the CLI tests run) fails the job even where a test would have accepted its exit code.
# No suppression file: the suite is clean without one.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
  address) build_dir=build-asan; target=all; select=() ;;
  thread) build_dir=build-tsan; target=tests_threads; select=(-L threads) ;;
  *) echo "usage: tools/sanitize.sh address|thread [ctest arguments...]" >&2; exit 2 ;;
esac

reports="$PWD/$build_dir/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# Exported before the build too: test discovery runs the instrumented test binaries.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan"

start=$(date +%s)
status=0
# -g1: line tables, enough for the reports' stacks, and a quarter less compile time than -g.
tools/setup.sh --cuda off --build-dir "$build_dir" --target "$target" -- -DLOOM_SANITIZE="$mode" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" >/dev/null || status=$?
built=$(date +%s)

if [ "$status" -eq 0 ]; then
  echo "== $mode sanitizer: tests in $build_dir ${select[*]} =="
  (cd "$build_dir" && ctest --output-on-failure --no-tests=error -j "$(nproc 2>/dev/null || echo 2)" \
    ${select[@]+"${select[@]}"} "$@") || status=$?
fi
done_at=$(date +%s)

if compgen -G "$reports/*" >/dev/null; then
  echo "== $mode sanitizer reports ==" >&2
  for report in "$reports"/*; do
    echo "--- $report" >&2
    cat "$report" >&2
  done
  [ "$status" -ne 0 ] || status=1
fi
echo "sanitize.sh $mode: build $((built - start)) s, tests $((done_at - built)) s, $([ "$status" -eq 0 ] && echo clean || echo FAILED)"
exit "$status"
