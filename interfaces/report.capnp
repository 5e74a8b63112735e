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

struct RunReport {
  manifest @0 :Text;
  components @1 :List(InstanceStats);   # after the run, in start order
  ok @2 :Bool;                          # every expectation held
  events @3 :List(Text);                # composer events (exits, restarts) during the run
  scenarios @4 :List(ScenarioReport);
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
