// Temporary: replaced by the vIOMMU implementation in the next commits.
#include "components/smmu_queue/smmuv3/viommu.h"

namespace nb::smmuq {

struct GuestSide::Impl {};

GuestSide::GuestSide(HostQueue& host, PhysMem& mem, rpc::GuestPath path)
    : impl(kj::heap<Impl>()) {}
GuestSide::~GuestSide() noexcept(false) {}

kj::Promise<void> GuestSide::allocViommu(rpc::SmmuQueue::AllocViommuContext context) {
  auto results = context.getResults();
  results.setErrno(rpc::Errno::E_OP_NOT_SUPP);
  results.setMessage("vIOMMU support is not built yet");
  return kj::READY_NOW;
}

void GuestSide::stats(kj::Vector<Stat>& out) {}

}  // namespace nb::smmuq
