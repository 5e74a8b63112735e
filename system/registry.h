// The registry of every component and hardware model nestbed ships: the one place that lists
// them (no static-initializer registration). The CLI and the host both build it from here.
#pragma once

#include "system/runtime/contract.h"

namespace nb {

void addBuiltinTypes(Registry& registry);

}  // namespace nb
