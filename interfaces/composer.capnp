@0xf1d9b7a35c4e2a05;
# The composer's root capability: the bootstrap of scenarios, the CLI and external clients on
# `nestbed serve`'s unix socket. Everything a scenario does goes through it.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Component = import "/interfaces/component.capnp".Component;
using FrameAllocator = import "/interfaces/mem.capnp".FrameAllocator;

enum Placement {
  inline @0;    # in the composer's process, a local capability
  process @1;   # its own process (system/host), two-party RPC over a socketpair
}

struct InstanceInfo {
  name @0 :Text;              # manifest instance name, e.g. "page_table" or "smmu0"
  impl @1 :Text;              # registry key, e.g. "page_table/arm_lpae"
  placement @2 :Placement;
  interfaceId @3 :UInt64;     # type ID of the main capability's interface
  uses @4 :List(Wire);
  isHardware @5 :Bool;        # a [[hw.*]] model rather than an OS-side component

  struct Wire {
    role @0 :Text;
    instance @1 :Text;
  }
}

interface Root {
  list @0 () -> (instances :List(InstanceInfo));
  # Every instance, in start (dependency) order.

  get @1 (name :Text) -> (component :Component, main :Capability);
  # The lifecycle capability and main capability of one instance; FAILED if no such name.

  memory @2 () -> (base :UInt64, size :UInt64, frames :FrameAllocator);
}
