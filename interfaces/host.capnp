@0xe83a5c1d7f2b9e04;
# The bootstrap a component host process (system/host) serves to the composer over its
# socketpair. One host runs one component instance.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Component = import "/interfaces/component.capnp".Component;
using FrameAllocator = import "/interfaces/mem.capnp".FrameAllocator;

struct Binding {
  role @0 :Text;           # the role name in the manifest's `uses` table; a list role has one
                           # Binding per element, in manifest order
  cap @1 :Capability;      # the main capability of the instance wired to it
}

interface ComponentHost {
  start @0 (instance :Text, impl :Text, settings :Text, uses :List(Binding),
            frames :FrameAllocator) -> (component :Component);
  # Builds the component: `settings` is its TOML table (the manifest keys that are its own).
  # Fails (FAILED exception) with the factory's message if the component cannot be built.
}
