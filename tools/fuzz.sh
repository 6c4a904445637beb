#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, ASan and UBSan, and runs each for a
# bounded time on a copy of its seed corpus (docs/fuzzing.md).
#   tools/fuzz.sh [--time SECONDS_PER_TARGET] [--build-dir DIR] [target...] [-- libFuzzer flags...]
# Default: every target, 60 s each, in build-fuzz/. Exits non-zero when any target finds a crash,
# a leak, a timeout or an out-of-memory input, naming the reproducer and how to rerun it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
build_dir=build-fuzz
targets=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) seconds=$2; shift 2 ;;
    --time=*) seconds=${1#*=}; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --time needs a positive number of seconds" >&2; exit 2; }

all_targets=()
for source in tests/fuzz/*_fuzzer.cpp; do
  name=$(basename "$source" _fuzzer.cpp)
  all_targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
    echo "fuzz.sh: no fuzz target '$t'; targets: ${all_targets[*]}" >&2
    exit 2
  fi
done

# What building needs: the project's libraries, and clang with its libFuzzer and sanitizer runtimes.
packages=(cmake make pkg-config clang-14 libclang-rt-14-dev libboost-dev libboost-program-options-dev
          libboost-filesystem-dev libtomlplusplus-dev libsentencepiece-dev libpcre2-dev libicu-dev nlohmann-json3-dev)
# shellcheck source=tools/install_packages.sh
source tools/install_packages.sh
install_missing fuzz "${packages[@]}"

start=$(date +%s)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DLOOM_CUDA=OFF -DLOOM_FUZZ=ON >/dev/null
cmake --build "$build_dir" --target loom_fuzzers -j "$(nproc 2>/dev/null || echo 2)"
built=$(date +%s)
echo "== fuzz targets built in $(( built - start )) s; ${seconds} s per target: ${targets[*]} =="

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
rows=()
failed=()
for t in "${targets[@]}"; do
  corpus="$build_dir/fuzz-corpus/$t"      # a copy: the checked-in seeds never grow here
  findings="$build_dir/fuzz-findings/$t"
  log="$build_dir/fuzz-logs/$t.log"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
  echo "-- $t: fuzzing for $seconds s (log: $log)"
  status=0
  "$build_dir/fuzz/fuzz_$t" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$findings/" ${extra[@]+"${extra[@]}"} >"$log" 2>&1 || status=$?

  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  runs=$(final_stat number_of_executed_units); per_s=$(final_stat average_exec_per_sec)
  added=$(final_stat new_units_added); rss=$(final_stat peak_rss_mb)
  result=ok
  if [ "$status" -ne 0 ]; then
    result=FAILED
    failed+=("$t")
    reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "!! $t failed (exit $status). Last lines of $log:" >&2
    tail -n 40 "$log" >&2
    if [ -n "$reproducer" ]; then
      echo "!! reproducer: $reproducer" >&2
      echo "!! rerun it:   $build_dir/fuzz/fuzz_$t $reproducer" >&2
      echo "!! (or without clang: tools/setup.sh --cuda off && build-nocuda/fuzz/fuzz_${t}_replay $reproducer)" >&2
    fi
  fi
  rows+=("$(printf '%-16s %8s %12s %8s %10s %8s  %s' "$t" "$seconds" "${runs:--}" "${per_s:--}" "${added:--}" \
            "${rss:--}" "$result")")
done

echo
printf '%-16s %8s %12s %8s %10s %8s  %s\n' target seconds executions exec/s new_units rss_mb result
printf '%s\n' "${rows[@]}"
echo "fuzzing finished in $(( $(date +%s) - start )) s (build $(( built - start )) s)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (reproducers under $build_dir/fuzz-findings/)" >&2
  exit 1
fi
