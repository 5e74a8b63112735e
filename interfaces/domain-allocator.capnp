@0xc7d35e19a2b4f086;
# The domain_allocator component: iommu_domains for SMMUv3 instances — allocation (Linux's
# domain_alloc_paging_flags, the static identity and blocked domains, nested domains over a
# vIOMMU), the ASID and VMID spaces of each SMMU, and installing domains on devices: the STEs
# and CDs in shared memory, changed with the hitless update sequence, each step followed by
# CFGI_STE/CFGI_CD and CMD_SYNC through smmu_queue (facts 2.2-2.5).
#
# Design stance: a domain is a capability (interfaces/domain.capnp); dropping the last
# reference frees it (its page table, its ASID or VMID), except while it is installed on a
# device, which keeps it alive. Devices are named by BDF ("ssss:bb:dd.f", or "bb:dd.f" when
# only one PCI segment has that function), as the PCI topologies the component is wired to
# export them. Expected outcomes — an attach to a device behind another SMMU, an invalid guest
# vSTE — are errno results with Linux meanings; exceptions mean a broken contract (a domain
# capability from another allocator) or a dead peer.
#
# Two implementations answer the allocation debate (ARCHITECTURE.md, debate 4):
#   domain_allocator/group_centric   "for a group" or "for the bus" quietly picks the first
#                                    device, as Linux's __iommu_group_domain_alloc and the old
#                                    iommu_domain_alloc(bus) did, and finalises the domain for
#                                    that device's SMMU;
#   domain_allocator/device_centric  allocation must name the device (or the SMMU instance):
#                                    "for a group" and "for the bus" are eInval.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Dom = import "/interfaces/domain.capnp";
using Queue = import "/interfaces/smmu-queue.capnp";

struct AllocFlags {
  # IOMMU_HWPT_ALLOC_* (facts 5.2).
  nestParent @0 :Bool;      # NEST_PARENT: a stage-2 domain a vIOMMU may sit on (needs nesting)
  dirtyTracking @1 :Bool;   # DIRTY_TRACKING: stage 1 with HTTU dirty state (needs HTTU)
  pasid @2 :Bool;           # PASID: may be attached to PASIDs (stage 1)
  type @3 :DmaDomainType;   # strict or lazy invalidation (default: the `default_domain_type`
                            # setting; a nest parent is always strict)
}

enum DmaDomainType {
  fromSetting @0;           # the allocator's `default_domain_type` (iommu.strict=)
  dma @1;                   # IOMMU_DOMAIN_DMA: strict, unmap invalidates before returning
  dmaFq @2;                 # IOMMU_DOMAIN_DMA_FQ: lazy, unmap queues its invalidation
}

struct AllocTarget {
  # Who the domain is for: what the caller hands Linux's allocation.
  union {
    device @0 :Text;        # iommu_paging_domain_alloc_flags(dev): that device's SMMU
    group @1 :List(Text);   # a group's devices (__iommu_group_domain_alloc): group_centric
                            # takes the first; device_centric refuses (eInval)
    bus @2 :Void;           # iommu_domain_alloc(bus): any device of the PCI topologies —
                            # group_centric takes the first; device_centric refuses (eInval)
    smmu @3 :Text;          # an SMMU instance by name (SmmuInfo.name)
  }
}

enum Policy {
  groupCentric @0;
  deviceCentric @1;
}

struct MasterInfo {
  # One device as the allocator sees it (Linux's arm_smmu_master).
  device @0 :Text;              # BDF "ssss:bb:dd.f"
  smmu @1 :Text;
  streamIds @2 :List(UInt32);   # every StreamID its DMA can carry (own RID, bridge takeover,
                                # quirk aliases), each with its own STE
  ssidBits @3 :UInt8;           # S1CDMax: min(SSIDSIZE, the allocator's pasid_bits) when PCIe
                                # PASID can be enabled (ACS RR and UF upstream), else 0
  domain @4 :UInt32;            # the domain on its STE (DomainInfo.id); 0 = none yet (abort)
  pasids @5 :List(PasidDomain); # domains on its PASIDs, by PASID
  cdTable @6 :UInt64;           # its CD table (or L1 CD table) PA; 0 = none
  ste @7 :List(UInt64);         # the 8 qwords of its first StreamID's STE, as in memory

  struct PasidDomain {
    pasid @0 :UInt32;
    domain @1 :UInt32;
  }
}

interface DomainAllocator {
  allocPaging @0 (target :AllocTarget, flags :AllocFlags)
      -> (errno :Common.Errno, domain :Dom.Domain, message :Text);
  # arm_smmu_domain_alloc_paging_flags (facts 5.2): no flag → stage 1 if the SMMU has it, else
  # stage 2; nestParent → stage 2; dirtyTracking or pasid → stage 1; dirtyTracking + nestParent
  # → eOpNotSupp; nestParent without nesting, dirtyTracking without HTTU dirty → eOpNotSupp.
  # Finalised at once: bound to one SMMU, its page table created (stage 1: IAS 48, OAS = the
  # SMMU's; stage 2: IAS = OAS = the SMMU's; the `granule` setting), its ASID or VMID
  # allocated from 1 (eNoSpc when the space is exhausted). eNoDev: an unknown device or SMMU;
  # eInval: a target this policy refuses (see the top of this file).

  allocIdentity @1 () -> (domain :Dom.Domain);
  # The static identity domain (bypass STEs); the same capability every time.

  allocBlocked @2 () -> (domain :Dom.Domain);
  # The static blocked domain (abort STEs; detaches PASIDs); the same capability every time.

  allocNested @3 (viommu :Queue.Viommu, vste :List(UInt64))
      -> (errno :Common.Errno, domain :Dom.Domain, message :Text);
  # IOMMU_HWPT_ALLOC over a vIOMMU with IOMMU_HWPT_DATA_ARM_SMMUV3: `vste` is the guest's STE
  # dw0 and dw1. Validated with the guest-settable masks (facts 2.3): eIo for a bit outside
  # them, a Config other than abort/bypass/s1_trans, or EATS other than abt/trans (eInval if
  # `vste` is not 2 words). The vIOMMU's stage-2 parent must be a nest-parent domain of this
  # allocator (eInval otherwise). V = 0 and abort become abort STEs, bypass the parent's
  # stage-2 STE, s1_trans a nested STE (facts 2.2).

  attachDevice @4 (device :Text, domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # arm_smmu_attach_dev: installs `domain` as the device's RID domain — every StreamID's STE
  # (stage 1: a CD table with the domain's CD at SSID 0) written with the hitless update
  # sequence, CFGI_STE + SYNC after each step (facts 2.4). eInval: `domain` was finalised for
  # another SMMU instance, or a nested domain's vIOMMU is on another SMMU; eBusy: a stage-2 or
  # nested domain while PASIDs are in use; eNoEnt: a translating nested domain and the device
  # has no vDEVICE on its vIOMMU; eNoDev: unknown device. The previous domain is released.

  setPasid @5 (device :Text, pasid :UInt32, domain :Dom.Domain)
      -> (errno :Common.Errno, message :Text);
  # set_dev_pasid: CD `pasid` of the device's CD table becomes the domain's (a stage-1 paging
  # domain), written hitlessly + CFGI_CD + SYNC. A device whose RID domain is not stage 1 gets
  # a CD-table STE first (S1DSS = terminate under blocked, bypass under identity). The blocked
  # domain detaches: the CD is cleared (V = 0), and once no PASID is left the STE returns to
  # its plain form. eInval: not a stage-1 domain, another SMMU, pasid 0 or ≥ 2^ssidBits, a
  # stage-2 or nested RID domain; eNoDev: unknown device.

  masters @6 () -> (masters :List(MasterInfo));
  # Every device of the wired topologies, by BDF.

  info @7 () -> (policy :Policy, smmus :List(Text), domains :UInt32);
  # The implementation's policy, the SMMU instances it drives (in `queues` order), and how
  # many domains are alive.
}
