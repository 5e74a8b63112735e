@0xc7e2a94b1d3f5a06;
# What `nestbed run` reports, and what `--json` prints (through Cap'n Proto's JSON codec), and
# the `--dump-memory` sidecar. Reports are data: tools compare them across runs.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Structure = import "/interfaces/component.capnp".Structure;
using ScenarioReport = import "/interfaces/scenario.capnp".ScenarioReport;

struct InstanceStats {
  name @0 :Text;            # instance name ("memory" for hw/mem itself)
  impl @1 :Text;
  counters @2 :List(Common.Counter);
}

struct Provenance {
  # What produced a report, so it can be reproduced: the build, the manifests as they ran (every
  # `--set` applied) and the scenario parameters.
  version @0 :Text;             # "nestbed 3f2a9c1d0b7e (fastbuild)" (`nestbed --version`)
  commit @1 :Text;              # the git commit (tools/workspace-status.sh), "-dirty" if changed
  buildMode @2 :Text;           # Bazel's compilation mode
  manifests @3 :List(Manifest);
  params @4 :List(Text);        # scenario parameters given, "name=value" (--define)
  timing @5 :Text;              # the modeled-time cost profile: "name (shipped)" or "name (path)"
  struct Manifest {
    label @0 :Text;             # "" for run; "A"/"B" or the variant's label for compare/sweep
    file @1 :Text;
    overrides @2 :List(Text);   # "key=value", in the order applied
    effective @3 :Text;         # the manifest as TOML with the overrides applied
  }
}

struct RunReport {
  manifest @0 :Text;
  components @1 :List(InstanceStats);   # after the run, in start order
  ok @2 :Bool;                          # every expectation held
  events @3 :List(Text);                # composer events (exits, restarts) during the run
  scenarios @4 :List(ScenarioReport);
  provenance @5 :Provenance;
  deaths @6 :List(Text);                # component processes that ended unasked (a scenario's
                                        # `kill` steps are asked for), shutdown included: each
                                        # makes `ok` false
}

struct MemoryDump {
  # Sidecar of `nestbed run --dump-memory FILE`: FILE holds the raw bytes of physical memory,
  # byte 0 being physical address `base`.
  image @0 :Text;           # the image file name
  base @1 :UInt64;
  size @2 :UInt64;
  structures @3 :List(Entry);

  struct Entry {
    instance @0 :Text;
    structure @1 :Structure;
  }
}

# ======================================================================================
# Experiments: what `nestbed compare` and `nestbed sweep` print (`--json` encodes this through
# Cap'n Proto's JSON codec; `--csv` writes the same rows).

struct ExperimentReport {
  kind @0 :Kind;
  enum Kind {
    compare @0;   # two manifests, variants A and B
    sweep @1;     # one manifest, one variant per value of `param`
  }

  scenarios @1 :List(Text);     # scenario files, run in this order in every run
  overrides @2 :List(Text);     # `--set key=value`, applied to every run
  param @3 :Text;               # sweep: the manifest key swept
  repeats @4 :UInt32;           # runs per variant (interleaved: A B A B..., or v1 v2 ... v1 v2 ...)
  spread @5 :Text;              # what `min` and `max` are: "min-max over runs"
  ok @6 :Bool;                  # every run of every variant passed its scenarios
  variants @7 :List(Variant);
  steps @8 :List(Row);          # scenario step timings, microseconds per iteration
  counters @9 :List(Row);       # every instance's stats() counters after each run
  stepCounters @12 :List(Row);
  # What each step changed: one row per (step, counter) some run of some variant changed, with
  # group/line the step's (as in `steps`), name "instance.counter" and `step` its label; a run
  # in which the step left the counter alone counts 0.
  provenance @13 :Provenance;   # manifests: one per variant, as its first run ran it
  otherSteps @14 :List(Row);
  # The same step rows in the other time base (wall when `timeBase` is modeled, modeled when it
  # is wall): the JSON and CSV of every experiment carry both.
  series @10 :Text;
  # sweep: a second key, one line per value in plots (e.g. the implementation compared across
  # the swept values); variants are every (value, series value) pair, each value's series side by
  # side
  timeBase @11 :Text;
  # what the step rows measure: "modeled" (the modeled machine's time, from the cost profile:
  # the same on every run, so repeats are not needed) or "wall" (this machine's time, --wall)

  struct Variant {
    label @0 :Text;             # "A", "B", or the swept value as written ("series/value" with a series)
    manifest @1 :Text;
    ok @2 :Bool;                # every run passed
    failures @3 :List(Text);    # why a run did not pass: "run 2: scenario x.capnp failed"
    value @4 :Text;             # sweep: the value of `param`
    seriesValue @5 :Text;       # sweep with a series: the value of `series`
  }

  struct Row {
    group @0 :Text;             # steps: the scenario file; counters: the instance
    name @1 :Text;              # steps: the step's label; counters: the counter
    line @2 :UInt32;            # steps: the scenario line (0 for counters)
    depth @3 :UInt8;            # steps: nesting inside repeats
    cells @4 :List(Cell);       # one per variant, in `variants` order
    ratio @5 :Float64;
    # compare: B's median over A's. 1 when they are equal (0 and 0 included); "Infinity" in JSON
    # when only A's is 0. sweep: the last value's median over the first's, alike.
    differs @6 :Bool;           # the variants' medians are not all equal
    varies @7 :Bool;
    # counters: some variant's runs disagree, although stats() promises deterministic counters.
    # steps: always false (timings vary).
    step @8 :Text;              # stepCounters: the step's label
  }

  struct Cell {
    present @0 :Bool;           # false: no run of this variant had the row (an instance it lacks)
    median @1 :Float64;
    min @2 :Float64;
    max @3 :Float64;
    samples @4 :List(Float64);  # one per run, in run order
  }
}

struct ExperimentPoint {
  # One run of one variant of a compare or sweep: what `compare`/`sweep --point N --out FILE`
  # writes (through Cap'n Proto's JSON codec) and `nestbed merge` reads back. compare and sweep
  # build their ExperimentReport from these same records, so a merge of every point of an
  # experiment prints what the command prints. The experiment's description is in every point;
  # merge refuses points of different experiments.
  kind @0 :ExperimentReport.Kind;
  scenarios @1 :List(Text);     # as ExperimentReport
  overrides @2 :List(Text);     # `--set key=value`, every run
  params @3 :List(Text);        # `--define name=value`, every run
  param @4 :Text;
  series @5 :Text;
  repeats @6 :UInt32;
  timeBase @7 :Text;            # "modeled" or "wall"
  variants @8 :List(ExperimentReport.Variant);
  # every variant of the experiment, in order (label, manifest, value, seriesValue)
  variant @9 :UInt32;           # this point's variant: an index into `variants`
  run @10 :UInt32;              # this point's run, 1-based
  outcome @11 :Outcome;
  enum Outcome {
    ran @0;                     # `report` holds the run (its `ok` says whether it passed)
    startFailed @1;             # an instance did not start: `error`
  }
  error @12 :Text;
  report @13 :RunReport;
}
