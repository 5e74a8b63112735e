// Every implementation nestbed ships, by registry key. Add a line here when one lands.

#include "system/registry.h"

#include "components/page_table/arm_lpae/component.h"

namespace nb {

void addBuiltinTypes(Registry& registry) {
  registry.add(pt::pageTableType());  // page_table/arm_lpae
}

}  // namespace nb
