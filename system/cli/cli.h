// The `nestbed` command line: check, graph, run, serve. Built on kj::MainBuilder.
//
// Exit status: 0 success, 1 failure (invalid manifest, a component failed, an expectation did
// not hold), 2 usage or file errors.
#pragma once

#include "system/runtime/contract.h"

namespace nb {

struct CliConfig {
  const Registry& registry;
  kj::StringPtr hostBinaryName;   // sibling executable that hosts process-placed instances
};

int nestbedMain(int argc, char* argv[], CliConfig config);

// Where the host binary is: $NESTBED_HOST, else next to this executable.
kj::String findHostBinary(kj::StringPtr name);

}  // namespace nb
