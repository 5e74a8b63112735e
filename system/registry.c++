// Every implementation nestbed ships, by registry key. Add a line here when one lands.

#include "system/registry.h"

namespace nb {

void addBuiltinTypes(Registry& registry) {
  // Components and hardware models are added here as they land (see README "Layout").
  (void)registry;
}

}  // namespace nb
