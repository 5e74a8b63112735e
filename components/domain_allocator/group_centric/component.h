// components/domain_allocator/group_centric: the "domain_allocator/group_centric" registry
// entry — the shared allocator (../common/allocator.h) with Linux's group-centric policy: an
// allocation "for a group" (or "for the bus") quietly picks the first device, as
// __iommu_group_domain_alloc and the old iommu_domain_alloc(bus) did, and finalises the domain
// for that device's SMMU instance.
#pragma once

#include "system/runtime/contract.h"

namespace nb::domains {

ComponentType groupCentricType();

}  // namespace nb::domains
