// components/smmu_queue/smmuv3: the guest side — vIOMMUs over one SMMU.
//
// Owns: vIOMMU objects (over a nest-parent stage-2 domain, its VMID), their vDEVICE tables
// (vSID <-> SID), the three guest invalidation paths (native conversion as Linux's
// arm_vsmmu_convert_user_cmd, generic descriptors, a software VCMDQ in guest memory) and the
// vEVENTQs (stage-1 events of a vDEVICE's device, SID replaced by the vSID).
// Does not own: the host CMDQ and EVTQ (host-queue.h): every command a guest causes goes
// through HostQueue::submit, every event arrives through VmasterSink.

#pragma once

#include "components/smmu_queue/smmuv3/host-queue.h"
#include "system/runtime/contract.h"

namespace nb::smmuq {

class GuestSide {
  // Every vIOMMU of one smmu_queue instance.
public:
  GuestSide(HostQueue& host, PhysMem& mem, rpc::GuestPath path);
  ~GuestSide() noexcept(false);
  KJ_DISALLOW_COPY(GuestSide);

  kj::Promise<void> allocViommu(capnp::CallContext<rpc::SmmuQueue::AllocViommuParams, rpc::SmmuQueue::AllocViommuResults> context);
  // SmmuQueue.allocViommu.

  void stats(kj::Vector<Stat>& out);
  // Guest-side counters (vIOMMUs, vDEVICEs, guest commands per path, lost precision...).

  struct Impl;  // viommu.c++

private:
  kj::Own<Impl> impl;
};

}  // namespace nb::smmuq
