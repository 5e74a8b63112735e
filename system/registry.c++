// Every implementation nestbed ships, by registry key. Add a line here when one lands.

#include "system/registry.h"

#include "components/domain_allocator/device_centric/component.h"
#include "components/domain_allocator/group_centric/component.h"
#include "components/group_manager/linux/component.h"
#include "components/page_table/arm_lpae/component.h"
#include "components/smmu_queue/smmuv3/component.h"
#include "hw/endpoint/component.h"
#include "hw/pci/component.h"
#include "hw/smmuv3/component.h"
#include "hw/vm/component.h"

namespace nb {

void addBuiltinTypes(Registry& registry) {
  registry.add(pt::pageTableType());  // page_table/arm_lpae
  registry.add(smmuq::smmuQueueType());  // smmu_queue/smmuv3
  registry.add(domains::groupCentricType());  // domain_allocator/group_centric
  registry.add(domains::deviceCentricType());  // domain_allocator/device_centric
  registry.add(groups::groupManagerType());  // group_manager/linux
  registry.add(smmu::smmuv3Type());  // hw/smmuv3
  registry.add(pci::pciType());  // hw/pci
  registry.add(endpoint::endpointType());  // hw/endpoint
  registry.add(vm::vmType());  // hw/vm
}

}  // namespace nb
