// system/guest: a guest SMMUv3 driver's invalidation side, for scenarios, tests and benchmarks.
//
// Owns: issuing one guest batch of raw 16-byte SMMUv3 commands through whichever path its
// vIOMMU was built with (interfaces/smmu-queue.capnp) — native and generic through
// Viommu.invalidate (the trapped command queue), sw_vcmdq by writing the commands into a ring
// in guest memory and ringing the doorbell, with the commands outside the VCMDQ subset sent
// through the trapped main queue as a Tegra241 guest does — and reporting the outcome the same
// way for all three (IOMMU_HWPT_INVALIDATE's errno and entry_num).
// Does not own: the vIOMMU or its paths (components/smmu_queue), guest memory (the caller
// translates guest-physical addresses).

#pragma once

#include "hw/mem/phys-mem.h"
#include "interfaces/smmu-queue.capnp.h"
#include "system/runtime/modeled-time.h"
#include <kj/async.h>
#include <kj/function.h>
#include <kj/string.h>

namespace nb::guest {

struct GuestOutcome {
  rpc::Errno errno_ = rpc::Errno::OK;
  uint32_t entryNum = 0;   // commands handled before the first that failed
  kj::String message;
};

// Guest-physical -> host-physical, for the guest's own memory (null: not guest memory).
using GpaToPa = kj::Function<kj::Promise<kj::Maybe<uint64_t>>(uint64_t gpa)>;

struct VcmdqRing {
  uint64_t gpa = 0;          // where the guest puts its ring (aligned to its size, 4 KiB at least)
  unsigned log2Entries = 8;  // 256 entries
};

class GuestQueue {
public:
  static kj::Promise<kj::Own<GuestQueue>> create(rpc::Viommu::Client viommu, PhysMem& mem,
                                                 GpaToPa gpaToPa, VcmdqRing ring = {});
  // Asks the vIOMMU for its path; with sw_vcmdq, programs and enables the VCMDQ on `ring`.

  rpc::GuestPath path() const { return path_; }

  // Charges the modeled cost of the guest's and the VMM's side of each batch on `clock`
  // (system/runtime/modeled-time.h); by default nothing is charged.
  void setClock(ModeledClock& clock) { this->clock = &clock; }

  kj::Promise<GuestOutcome> invalidate(kj::Array<const uint64_t> commands);
  // `commands`: dw0, dw1 pairs. Batches are issued one at a time, in call order.

  GuestQueue(rpc::Viommu::Client viommu, PhysMem& mem, rpc::GuestPath path);  // use create()

private:
  kj::Promise<GuestOutcome> issue(kj::Array<const uint64_t> commands);
  kj::Promise<GuestOutcome> viaMainQueue(kj::ArrayPtr<const uint64_t> commands);
  kj::Promise<GuestOutcome> viaRing(kj::ArrayPtr<const uint64_t> commands);
  kj::Promise<GuestOutcome> runs(kj::Array<const uint64_t> commands, size_t from);
  kj::Promise<void> enableRing(GpaToPa& gpaToPa, VcmdqRing ring);

  rpc::Viommu::Client viommu;
  PhysMem& mem;
  rpc::GuestPath path_;
  ModeledClock* clock = &ModeledClock::off();
  // sw_vcmdq
  kj::Maybe<rpc::Mmio::Client> vcmdq;
  kj::Vector<uint64_t> ringPages;  // PA of each 4 KiB page of the ring
  uint32_t entries = 0;
  uint32_t prod = 0;
  kj::Promise<void> tail = kj::READY_NOW;
};

bool inVcmdqSubset(uint64_t dw0);
// TLBI_NH_ASID, TLBI_NH_VA, ATC_INV and CMD_SYNC (facts 5.3).

}  // namespace nb::guest
