// What build of nestbed this is: the git commit (from Bazel's workspace status,
// tools/workspace-status.sh) and the compilation mode. Every report records them.
#pragma once

#include <kj/string.h>

namespace nb {

kj::StringPtr nestbedCommit();   // "3f2a9c1d0b7e", "3f2a9c1d0b7e-dirty", or "unknown"
kj::StringPtr buildMode();       // Bazel's compilation mode: "fastbuild", "opt" or "dbg"
kj::String nestbedVersion();     // "nestbed 3f2a9c1d0b7e (fastbuild)"

}  // namespace nb
