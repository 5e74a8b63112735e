#!/usr/bin/env bash
# Runs nestbed's libFuzzer targets (tests/fuzz) for a bounded time each and prints, per target,
#   fuzz_execs_<target>: N      inputs run
#   fuzz_crashes_<target>: N    crashes, leaks, timeouts and out-of-memory (0 or 1: libFuzzer
#                               stops at the first and writes the input to the artifacts dir)
# Usage: tools/fuzz.sh [--time SECONDS] [--jobs N] [target ...]
#   --time: per target (default 20); --jobs: Bazel's (default 2). Default: every target.
#   tools/fuzz.sh --time 3600     the long run
# Inputs it finds are kept in a scratch corpus (printed at the end), not in the tree: a crash's
# input belongs in tests/fuzz/corpus/<target>/ once it is fixed, with a regression test.
# Exits 1 if any target crashed or did not build.
set -uo pipefail
cd "$(dirname "$0")/.."

time=20
jobs=2
targets=()
while (($#)); do
  case "$1" in
    --time) time="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(manifest_fuzz scenario_fuzz call_fuzz guest_native_fuzz guest_generic_fuzz
     guest_sw_vcmdq_fuzz vste_fuzz mmio_fuzz serve_fuzz)
((${#targets[@]})) || targets=("${all[@]}")

labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:$t"); done
if ! bazel build --config=fuzz --jobs="$jobs" "${labels[@]}"; then
  for t in "${targets[@]}"; do echo "fuzz_execs_$t: 0"; echo "fuzz_crashes_$t: 1"; done
  exit 1
fi
bin=$(bazel info --config=fuzz bazel-bin 2>/dev/null)

work=${FUZZ_WORKDIR:-$(mktemp -d /tmp/nestbed-fuzz.XXXXXX)}
status=0
summary=()
for t in "${targets[@]}"; do
  seeds=${t}
  case "$t" in guest_*_fuzz) seeds=guest_fuzz ;; esac
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$seeds"/* "$corpus"/ 2>/dev/null
  log="$work/$t.log"
  (cd "$work" && "$bin/tests/fuzz/$t" -max_total_time="$time" -max_len=4096 -timeout=20 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" \
      >"$log" 2>&1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$artifacts" -type f | wc -l)
  summary+=("fuzz_execs_$t: ${execs:-0}" "fuzz_crashes_$t: $crashes")
  echo "fuzz_execs_$t: ${execs:-0}"
  echo "fuzz_crashes_$t: $crashes"
  if [ "$crashes" -ne 0 ] || [ -z "$execs" ]; then
    status=1
    echo "fuzz: $t: see $log; inputs: $(find "$artifacts" -type f | tr '\n' ' ')" >&2
  fi
done
echo "fuzz: corpora and logs in $work" >&2
exit $status
