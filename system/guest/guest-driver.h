// system/guest: a guest SMMUv3 driver's stage-1 side, for nested scenarios, tests and benchmarks
// — what a guest kernel does with the vIOMMU it is given, in its own memory.
//
// Owns: a region of guest RAM (one memslot's worth, named by GPA) in which the driver keeps its
// structures: a VMSAv8-64 stage-1 table built by the page-table engine operating in
// guest-physical space (table pages allocated from the region, next-level pointers and leaves
// are GPAs, written through the system's PhysMem at the PAs the VM translates), a linear CD
// table with the CD of SSID 0 (facts 2.5), and — on the sw_vcmdq path — the VCMDQ ring. It
// builds the guest's vSTE (facts 2.3: V, Config = S1_TRANS, S1ContextPtr = the CD table's GPA),
// has it turned into a nested domain over the vIOMMU (DomainAllocator.allocNested, the VMM's
// IOMMU_HWPT_ALLOC on the guest's behalf) and attached, and invalidates what it unmaps through
// the vIOMMU's guest path (GuestQueue: TLBI_NH_VA by ASID, then CMD_SYNC).
// Does not own: the VM's map (the region must stay where it is: a guest's RAM does not move
// under it), the vIOMMU or its vDEVICEs (the VMM's), the stage-2 shadow.
//
// Single-threaded, one event loop; map/unmap are synchronous plain stores, as a guest kernel's.

#pragma once

#include "components/page_table/arm_lpae/io-page-table.h"
#include "hw/mem/frame-allocator.h"
#include "interfaces/domain-allocator.capnp.h"
#include "interfaces/group-manager.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "interfaces/vm.capnp.h"
#include "system/guest/guest-queue.h"

#include <kj/one-of.h>

namespace nb::guest {

struct GuestSetup {
  uint64_t regionGpa = 0;        // the driver's own guest memory: 4 KiB aligned, one slot,
  uint64_t regionSize = 1 << 20; // writable; page tables, the CD table, a VCMDQ ring
  uint16_t asid = 1;             // the guest's ASID for its stage-1 context (CD of SSID 0)
  uint64_t vsid = 0;             // the device's guest StreamID (for CFGI_CD)
  pt::Granule granule = pt::Granule::SIZE_4K;
  uint32_t ias = 48;             // stage-1 input (IOVA) bits
  uint32_t oas = 0;              // stage-1 output bits: guest-physical; 0 = the VM's ipaBits
                                 // rounded up to a valid size
  unsigned ringLog2Entries = 8;  // sw_vcmdq: the ring's size
};

struct GuestStatus {
  rpc::Errno errno_ = rpc::Errno::OK;
  kj::String message;
};

class GuestDriver {
public:
  static kj::Promise<kj::Own<GuestDriver>> create(PhysMem& mem, rpc::Vm::Client vm,
                                                  rpc::Viommu::Client viommu, GuestSetup setup);
  // Translates the region through the VM (it must lie in one writable slot: a broken contract
  // otherwise), lays out the CD table and the stage-1 PGD in it, writes the CD, and sets up the
  // guest queue on the vIOMMU's path (with sw_vcmdq, its ring in the region).

  // ---- the guest's stage 1 (synchronous, in guest memory) ----

  pt::MapResult map(uint64_t iova, uint64_t gpa, uint64_t size, pt::Prot prot);
  pt::UnmapResult unmap(uint64_t iova, uint64_t size);
  kj::Maybe<uint64_t> iovaToGpa(uint64_t iova) const { return table->iovaToPhys(iova); }

  // ---- what the hypervisor is handed ----

  kj::Array<uint64_t> vste() const;
  // The guest's STE dw0 and dw1: V, Config = S1_TRANS, S1Fmt linear, S1ContextPtr, S1CDMax 0;
  // S1DSS = SSID0, S1CIR = S1COR = WBRA, S1CSH = ISH (what Linux writes for a CD table).

  kj::Promise<GuestStatus> attach(rpc::DomainAllocator::Client allocator,
                                  rpc::Ownership::Client ownership);
  // allocNested(vIOMMU, vste()) then Ownership.attach of the nested domain (the iommufd path: a
  // VMM that claimed the device attaches its nested HWPT). The first errno stops it.

  kj::Maybe<rpc::Domain::Client> nestedDomain() { return nested; }

  // ---- invalidation through the vIOMMU's guest path ----

  kj::Promise<GuestOutcome> invalidate(kj::ArrayPtr<const pt::Invalidation> invalidations);
  // TLBI_NH_VA (ASID, leaf as returned) for each granule of each range — TLBI_NH_ASID instead
  // once a batch would exceed 64 — then CMD_SYNC, as one guest batch. (On the trapped paths the
  // VMM consumes the SYNC: what reaches the vIOMMU is the batch before it.)

  kj::Promise<GuestOutcome> invalidateContext();
  // CFGI_CD of (vSID, SSID 0) + CMD_SYNC: after the guest changes its CD.

  // ---- introspection ----

  uint64_t cdTableGpa() const { return cdGpa; }
  uint64_t regionPa() const { return pa; }
  const pt::IoPageTable& stage1() const { return *table; }
  GuestQueue& queue() { return *guestQueue; }
  uint16_t asid() const { return setup.asid; }

  GuestDriver(PhysMem& mem, rpc::Vm::Client vm, rpc::Viommu::Client viommu, GuestSetup setup,
              uint64_t pa);  // use create()
  ~GuestDriver() noexcept(false);
  KJ_DISALLOW_COPY(GuestDriver);

private:
  void writeCd();
  void endBatch(kj::Vector<uint64_t>& words);

  rpc::Vm::Client vm;
  rpc::Viommu::Client viommu;
  GuestSetup setup;
  uint64_t pa;                        // the region's physical base
  kj::Own<PhysMem> window;            // the region at its GPAs
  FrameAllocator frames;              // the region's pages, by GPA
  uint64_t cdGpa = 0;
  kj::Own<pt::IoPageTable> table;
  kj::Own<GuestQueue> guestQueue;
  kj::Maybe<rpc::Domain::Client> nested;
};

}  // namespace nb::guest
