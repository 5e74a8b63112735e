#!/usr/bin/env bash
# The scale scenario (`nestbed generate`, system/generate/scale.h) at N VMs x 2 devices on two
# SMMUs passes inline and process-placed with identical counters: `nestbed compare` of the two
# placements (every expectation of the scenario holds on both: exit 0), no counter and no step's
# counter change differing, and counts derived by hand from the scenario. Arguments: nestbed, N.
set -u
nestbed=$1
n=$2
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$nestbed" generate --vms "$n" --devices 2 --manifest "$tmp/inline.toml" --scenario "$tmp/scale.capnp" ||
  fail "generate"
"$nestbed" generate --vms "$n" --devices 2 --placement process --manifest "$tmp/process.toml" || fail "generate"
grep -q 'placement = "process"' "$tmp/process.toml" || fail "the process manifest places nothing in a process"
"$nestbed" compare "$tmp/inline.toml" "$tmp/process.toml" "$tmp/scale.capnp" --csv "$tmp/c.csv" \
  > "$tmp/c.txt" 2> "$tmp/c.err" || { fail "compare: $(tail -5 "$tmp/c.err")"; grep -B2 -A3 FAIL "$tmp/c.txt" | head -20; }

# CSV: kind,group,name,line, median,min,max of A, of B, ratio, differs, varies.
differ=$(awk -F, '($1 == "counter" || $1 == "step_counter") && $(NF-1) != 0' "$tmp/c.csv")
[ -z "$differ" ] || fail "counters differ between inline and process: $(head -3 <<< "$differ")"
counters=$(grep -c '^counter,' "$tmp/c.csv")
# Per VM: a vm, 2 endpoints; besides: 2 SMMUs, 2 segments, memory and 6 components.
[ "$counters" -gt $((n * 3 * 5)) ] || fail "only $counters counters for $n VMs"
value() {   # instance counter -> A's median, if B's is the same
  awk -F, -v i="$1" -v c="$2" '$1 == "counter" && $2 == i && $3 == c { if ($5 == $8) print $5; else print "A=" $5 " B=" $8 }' "$tmp/c.csv"
}
expect() {  # instance counter value
  local v
  v=$(value "$1" "$2")
  [ "$v" = "$3" ] || fail "$1.$2: expected $3, got '${v}'"
}
# VMs alternate between the SMMUs: smmu0 serves the even ones, half of them rounded up.
even=$(((n + 1) / 2))
expect queue0 viommus "$even"
expect queue1 viommus $((n / 2))
# One stage-1 fault per device, delivered to its guest's vEVENTQ; one on the last VM's device 1.
expect queue0 events_to_guests $((2 * even))
expect queue1 events_to_guests $((2 * (n / 2)))
expect smmu0 faults $((2 * even))
expect "ep$((n - 1))_1" faults 1
expect "ep$((n - 1))_1" dma_writes 1
expect shadow shadows_created "$n"
expect shadow leaf_writes $((2 * n))   # each VM's 4 MiB of RAM: two 2 MiB blocks
grep -q "0 of $counters counters differ between A and B" "$tmp/c.txt" || fail "the summary: $(tail -1 "$tmp/c.txt")"

# Bad parameters are refused by name, as a wrong command line (exit 2), before anything is written.
for bad in "--vms 0:vms: 0 is not 1..1024" "--devices 9:devices: 9 per VM is not 1..8" \
           "--vms 600 --smmus 2:600 endpoints behind one SMMU" "--placement remote:placement: 'remote'"; do
  "$nestbed" generate ${bad%%:*} --manifest "$tmp/bad.toml" > /dev/null 2> "$tmp/bad.err"
  status=$?
  [ $status -eq 2 ] && grep -qF -- "${bad#*:}" "$tmp/bad.err" && [ ! -e "$tmp/bad.toml" ] ||
    fail "generate ${bad%%:*}: exit $status, $(cat "$tmp/bad.err")"
done

[ $failures -eq 0 ] && echo "PASS: $n VMs, $counters counters identical inline and process-placed" && exit 0
exit 1
