// components/domain_allocator/group_centric: the "domain_allocator/group_centric" registry entry — the shared
// allocator (../common/allocator.h) with its policy: allocation "for a group" (or "for the bus") quietly picks the first device,
// as Linux's __iommu_group_domain_alloc and the old iommu_domain_alloc(bus) did, and finalises the
// domain for that device's SMMU instance.
#pragma once

#include "system/runtime/contract.h"

namespace nb::domains {

ComponentType groupCentricType();

}  // namespace nb::domains
