@0xe6c1f0a3b7d29e54;
# An iommu_domain as the rest of the stack sees it: what it is, which SMMU instance it was
# finalised for, its ASID or VMID, and its IOVA → PA map.
#
# Design stance: a domain is a capability, handed out by domain_allocator. Whoever holds one
# may use it (a stage-2 domain handed to smmu_queue to build a vIOMMU over it, a nested domain
# attached by group_manager); dropping the last reference frees it. The page tables behind it
# live in shared physical memory and never cross RPC.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using PageTable = import "/interfaces/page-table.capnp";

enum DomainKind {
  blocked @0;     # every transaction aborted (an abort STE)
  identity @1;    # bypass (STE Config = bypass)
  stage1 @2;      # paging, stage 1: a CD with an ASID
  stage2 @3;      # paging, stage 2: an STE with a VMID
  nested @4;      # a guest vSTE (guest stage 1) over a nest-parent stage 2, through a vIOMMU
}

struct DomainInfo {
  id @0 :UInt32;               # domain_allocator's handle, unique per allocator
  kind @1 :DomainKind;
  smmu @2 :Text;               # the SMMU instance it was finalised for (SmmuInfo.name); "" for
                               # the global blocked and identity domains
  nestParent @3 :Bool;         # stage 2 allocated with NEST_PARENT: may carry a vIOMMU
  dirtyTracking @4 :Bool;
  asid @5 :UInt16;             # stage 1: its ASID (from 1)
  vmid @6 :UInt16;             # stage 2 and nested: its VMID (from 1)
  ias @7 :UInt8;               # input address bits (aperture [0, 2^ias - 1])
  oas @8 :UInt8;
  pgsizeBitmap @9 :UInt64;     # leaf sizes the domain can map; the smallest is its granule
  table @10 :PageTable.TableInfo;  # paging domains: the table's configuration
  attachments @11 :List(Attachment);  # where it is installed now, sorted by device then PASID
  vste @12 :List(UInt64);      # nested: the guest's vSTE (dw0, dw1) as validated (EATS
                               # cleared, facts 2.3); empty for other kinds
  vsteConfig @13 :VsteConfig;  # nested: what the vSTE asks for
  flushQueue @14 :Bool;        # IOMMU_DOMAIN_DMA_FQ (lazy): unmaps defer their TLB invalidation
                               # to a flush queue; false: IOMMU_DOMAIN_DMA (strict)
}

enum VsteConfig {
  # Facts 2.2: what a nested domain's physical STE is, by the guest vSTE's Config.
  notNested @0;   # the domain is not nested
  abort @1;       # V = 0 or Config = abort: an abort STE
  bypass @2;      # Config = bypass: the parent's stage-2 STE (guest sees identity at stage 1)
  s1Trans @3;     # Config = s1_trans: a nested STE (guest CDs and tables through stage 2)
}

struct Attachment {
  device @0 :Text;             # the device's BDF, "ssss:bb:dd.f"
  union {
    rid @1 :Void;              # the device's own (RID) domain: its STE
    pasid @2 :UInt32;          # a PASID of the device: CD `pasid` of its CD table
  }
}

interface Domain {
  info @0 () -> (info :DomainInfo);

  iovaToPhys @1 (iova :UInt64) -> (errno :Common.Errno, pa :UInt64);
  # eNoEnt when nothing is mapped at `iova`; eOpNotSupp for a domain without a page table.

  map @2 (runs :List(PageTable.MapRun)) -> (errno :Common.Errno, bytesMapped :UInt64,
                                            failedIndex :Int64 = -1);
  # iommu_map, several runs in one call (page-table.capnp PageTable.map: the same errno values
  # and partial progress). Any invalidation the table returns is issued, with a CMD_SYNC,
  # before this returns. eOpNotSupp for a domain without a page table (identity, blocked,
  # nested: the guest owns stage 1).

  unmap @3 (ranges :List(PageTable.Range)) -> (errno :Common.Errno, bytesUnmapped :UInt64,
                                               stoppedIndex :Int64 = -1, commands :UInt32,
                                               syncs :UInt32);
  # Each range is one iommu_unmap: the page table's unmap, then Linux's invalidations for what
  # it returned (domain_allocator's `kernel` setting; components/README.md): each freed
  # table's walk flush at once, leaf flushes through the gather (iommu_iotlb_gather_add_page,
  # with its early syncs) and a final sync — TLBI_NH_VA by ASID (stage 1) or TLBI_S2_IPA by
  # VMID (stage 2; a nest parent adds TLBI_NH_ALL + SYNC after each), in range form with RIL,
  # one per granule without. All complete before this returns. A flush-queue domain
  # (flushQueue) issues the walk flushes only and queues one entry per range instead (drained
  # by a whole-ASID/VMID flush when the queue is full or by drainFlushQueue): DMA to the
  # unmapped IOVAs may still hit the IOTLB until then. `commands`: the invalidation commands
  # built (SYNCs excluded); `syncs`: the CMD_SYNCs.

  flushAll @4 () -> (errno :Common.Errno);
  # iommu_flush_iotlb_all: TLBI_NH_ASID (stage 1), TLBI_S12_VMALL (stage 2) or TLBI_NH_ALL of
  # its VMID (nested: the guest's stage-1 entries) + SYNC. eOpNotSupp for identity and blocked.

  drainFlushQueue @5 () -> (errno :Common.Errno, flushed :Bool, entries :UInt32);
  # A flush-queue domain's timer expiry (fq_flush_timeout; Linux's 10 ms, explicit until
  # nestbed models time): when entries are pending, one whole-ASID/VMID flush + SYNC
  # (`flushed`) and every queued entry reclaimed (`entries`). A strict domain has nothing
  # pending (ok, not flushed); eOpNotSupp for a domain without a page table.
}
