#!/usr/bin/env bash
# nestbed_study's merged result (//tests/studies:four_points: its table, CSV and JSON) equals
# `nestbed sweep` run here on the same manifest, scenario and points; `nestbed merge` refuses a
# missing, repeated or foreign point; a study in wall time runs 3 rounds. Arguments: nestbed, the
# study's outputs, "--", its points, "--", the wall-time study's outputs, "--", its points.
set -u
nestbed=$1
shift
outputs=()
while [ "$1" != "--" ]; do outputs+=("$1"); shift; done
shift
points=()
while [ "$1" != "--" ]; do points+=("$1"); shift; done
shift
wall_outputs=()
while [ "$1" != "--" ]; do wall_outputs+=("$1"); shift; done
shift
wall_points=("$@")
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
output() { for f in "${outputs[@]}"; do case $f in *"$1") echo "$f" ;; esac; done; }

[ ${#points[@]} -eq 4 ] || fail "the study has ${#points[@]} points, not 2 values x 2 series = 4"

# The same experiment, as one command.
args=(system/manifests/guest-native.toml system/scenarios/guest-batches.capnp
      --param scenario.batch=1,8 --series components.smmu_queue.guest_path=native,sw_vcmdq)
"$nestbed" sweep "${args[@]}" --csv "$tmp/sweep.csv" > "$tmp/sweep.txt" 2> "$tmp/sweep.err" ||
  fail "nestbed sweep: $(cat "$tmp/sweep.err")"
"$nestbed" sweep "${args[@]}" --json > "$tmp/sweep.json" 2> /dev/null || fail "nestbed sweep --json"

# The table is in modeled time: identical. CSV and JSON also carry the steps in wall time (this
# machine's, different on every run): those rows aside, identical.
cmp -s "$tmp/sweep.txt" "$(output .txt)" || { fail "table differs"; diff "$tmp/sweep.txt" "$(output .txt)" | head; }
grep -v '^step_wall_us,' "$tmp/sweep.csv" > "$tmp/a.csv"
grep -v '^step_wall_us,' "$(output .csv)" > "$tmp/b.csv"
cmp -s "$tmp/a.csv" "$tmp/b.csv" || { fail "CSV differs"; diff "$tmp/a.csv" "$tmp/b.csv" | head; }
[ "$(wc -l < "$tmp/a.csv")" -gt 100 ] || fail "the CSV has fewer than 100 rows besides wall time"
grep -q '^step_wall_us,' "$(output .csv)" || fail "the study's CSV lacks the wall-time rows"
strip_wall() { awk '/^  "otherSteps": \[/ { skip = 1 } !skip { print } skip && /^  \]/ { skip = 0 }' "$1"; }
strip_wall "$tmp/sweep.json" > "$tmp/a.json"
strip_wall "$(output .json)" > "$tmp/b.json"
cmp -s "$tmp/a.json" "$tmp/b.json" || { fail "JSON differs"; diff "$tmp/a.json" "$tmp/b.json" | head; }
grep -q '"guest_path"\|guest_path' "$tmp/b.json" || fail "the JSON does not name the series"
grep -q '<svg' "$(output .svg)" || fail "no figure"
grep -q 'one guest batch' "$(output .gp)" || fail "the plot script does not draw the chosen figure"

# merge: every point, in any order, gives the same table; a missing, repeated or foreign point is
# refused (exit 1) by name.
"$nestbed" merge "${points[3]}" "${points[1]}" "${points[0]}" "${points[2]}" > "$tmp/any-order.txt" 2>/dev/null ||
  fail "merge in another order"
cmp -s "$tmp/any-order.txt" "$(output .txt)" || fail "merge depends on the points' order"
"$nestbed" merge "${points[0]}" "${points[1]}" "${points[2]}" > /dev/null 2> "$tmp/missing.err"
[ $? -eq 1 ] && grep -q 'point 3 (variant sw_vcmdq/8, run 1) is missing' "$tmp/missing.err" ||
  fail "a missing point: $(cat "$tmp/missing.err")"
"$nestbed" merge "${points[@]}" "${points[1]}" > /dev/null 2> "$tmp/twice.err"
[ $? -eq 1 ] && grep -q 'the same point as' "$tmp/twice.err" || fail "a repeated point: $(cat "$tmp/twice.err")"
"$nestbed" sweep "${args[0]}" "${args[1]}" --param scenario.batch=1,64 --series components.smmu_queue.guest_path=native,sw_vcmdq \
  --point 0 --out "$tmp/foreign.json" 2> /dev/null || fail "sweep --point 0"
"$nestbed" merge "${points[@]:0:3}" "$tmp/foreign.json" > /dev/null 2> "$tmp/foreign.err"
[ $? -eq 1 ] && grep -q 'foreign.json: a point of another experiment' "$tmp/foreign.err" ||
  fail "a foreign point: $(cat "$tmp/foreign.err")"
echo '{"kind": "sweep", "variants": [' > "$tmp/broken.json"
"$nestbed" merge "$tmp/broken.json" > /dev/null 2> "$tmp/broken.err"
[ $? -eq 1 ] && grep -q "broken.json: not a point's record" "$tmp/broken.err" || fail "a broken record: $(cat "$tmp/broken.err")"
"$nestbed" sweep "${args[@]}" --point 4 --out "$tmp/p4.json" > /dev/null 2> "$tmp/range.err"
[ $? -eq 2 ] && grep -q 'this experiment has 4 runs' "$tmp/range.err" || fail "--point 4 of 4: $(cat "$tmp/range.err")"

# wall = True: steps in this machine's time, 3 runs of each side (2 x 3 points), median [min-max].
[ ${#wall_points[@]} -eq 6 ] || fail "the wall-time compare has ${#wall_points[@]} points, not 2 sides x 3 runs"
wall_txt=$(for f in "${wall_outputs[@]}"; do case $f in *.txt) echo "$f" ;; esac; done)
head -1 "$wall_txt" | grep -q '3 runs of each, alternating A B; median \[min-max\] over runs; steps in wall time' ||
  fail "the wall-time table: $(head -1 "$wall_txt")"

[ $failures -eq 0 ] && echo "PASS" && exit 0
exit 1
