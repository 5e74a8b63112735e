// system/host: the process that runs one component when its placement is "process".
//
// Owns: the child side of the composer's socketpair — mapping physical memory from the
// inherited fd, serving interfaces/host.capnp ComponentHost as the bootstrap, building the
// component from the registry, and exiting when the component shuts down or the composer goes
// away. Does not own: which components exist (the Registry passed in).

#pragma once

#include "system/runtime/contract.h"

namespace nb {

// The host's main(): argv carries --socket-fd, --mem-fd, --mem-base, --mem-size, --name.
int hostMain(int argc, char* argv[], const Registry& registry);

}  // namespace nb
