// The "domain_allocator/group_centric" registry entry. See component.h.

#include "components/domain_allocator/group_centric/component.h"

#include "components/domain_allocator/common/allocator.h"

namespace nb::domains {

namespace {

kj::Promise<rpc::Component::Client> make(ComponentContext& ctx) {
  return kj::evalNow([&]() { return makeDomainAllocator(ctx, rpc::Policy::GROUP_CENTRIC); });
}

}  // namespace

ComponentType groupCentricType() {
  return domainAllocatorType(
      "domain_allocator/group_centric",
      "domains finalised \"for a group\" or \"for the bus\" by its first device, as Linux's "
      "__iommu_group_domain_alloc and iommu_domain_alloc(bus)",
      make);
}

}  // namespace nb::domains
