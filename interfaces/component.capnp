@0xd4b2e0a97c3f1b02;
# The component contract: what every component (and every hosted hardware model) serves.
#
# Design stance: capability-based. A component never names a peer; it is built from its TOML
# table and the capabilities of the instances it `uses`, and it hands out one main capability.
# Its lifecycle is this interface: introspection, statistics, orderly shutdown.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";

interface Component {
  main @0 () -> (cap :Capability);
  # The component's main capability (a PageTableFactory, an Smmuv3 MMIO window, ...). Its
  # interface is the one `info().interfaceId` names.

  info @1 () -> (info :Info);

  stats @2 () -> (counters :List(Common.Counter));
  # Named counters, in a stable order. Deterministic counters (operation counts) only: timings
  # belong to benchmarks and the scenario report, so runs compare exactly.

  structures @3 () -> (structures :List(Structure));
  # What the component has placed in physical memory right now (stream tables, page-table
  # roots, queues): written into the `--dump-memory` sidecar so post-mortems can find them.

  shutdown @4 () -> ();
  # Orderly shutdown: release every frame and capability. After it returns, the component
  # answers no further calls; a process-placed component's host exits.

  struct Info {
    impl @0 :Text;             # registry key, e.g. "page_table/arm_lpae"
    interfaceId @1 :UInt64;    # type ID of the main capability's interface
    pid @2 :Int32;             # process serving this component
  }
}

struct Structure {
  kind @0 :Text;      # e.g. "stream_table", "page_table_root", "cmdq"
  name @1 :Text;      # instance-scoped name, e.g. "smmu0" or "domain 3"
  pa @2 :UInt64;      # physical address of the structure
  size @3 :UInt64;    # bytes
  detail @4 :Text;    # format details, e.g. "ARM_64_LPAE_S2 4K ias=40 oas=40 start_level=1"
}
