// The "domain_allocator/device_centric" registry entry. See component.h.

#include "components/domain_allocator/device_centric/component.h"

#include "components/domain_allocator/common/allocator.h"

namespace nb::domains {

namespace {

kj::Promise<rpc::Component::Client> make(ComponentContext& ctx) {
  return kj::evalNow([&]() { return makeDomainAllocator(ctx, rpc::Policy::DEVICE_CENTRIC); });
}

}  // namespace

ComponentType deviceCentricType() {
  return domainAllocatorType(
      "domain_allocator/device_centric",
      "domains finalised for the device (or SMMU instance) the caller names; group and bus "
      "targets are eInval",
      make);
}

}  // namespace nb::domains
