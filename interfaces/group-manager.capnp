@0x9f4b2d7c1e6a3805;
# The group_manager component: iommu groups and DMA ownership — the part of Linux's iommu core
# (drivers/iommu/iommu.c, facts 6) that decides which devices share a translation, who may
# change it, and which domain each group sits on.
#
# Design stance: groups are formed once, at start, from the PCIe topologies the component is
# wired to (ACS on the upstream path, multifunction devices, DMA aliases) and are data.
# Ownership is a capability: a claim returns an `Ownership`; every change of a group's domain
# goes through one, and dropping it (or its holder's process dying) releases the claim, which
# puts the group back on its default domain. Domains are domain_allocator capabilities
# (interfaces/domain.capnp); this component installs them on every device of a group, one
# device at a time, and puts back the devices already moved when one fails. Expected outcomes
# are errno results with Linux meanings; exceptions mean a broken contract or a dead peer.
# Devices are named by BDF ("ssss:bb:dd.f", or "bb:dd.f" when only one PCI segment has it).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Dom = import "/interfaces/domain.capnp";

enum DefaultDomainType {
  # iommu_def_domain_type, per group (the manifest's `default_domain`, per-device overrides).
  identity @0;     # IOMMU_DOMAIN_IDENTITY: DMA bypasses translation (iommu.passthrough=1)
  translated @1;   # IOMMU_DOMAIN_DMA: a stage-1 paging domain owned by the kernel's DMA API
}

enum GroupDomain {
  # Which of its domains a group sits on.
  defaultDomain @0;    # group->default_domain
  blockingDomain @1;   # group->blocking_domain: claimed, nothing attached
  attached @2;         # a domain its owner attached (or replaced in)
}

struct PasidInfo {
  pasid @0 :UInt32;
  domain @1 :UInt32;   # DomainInfo.id
}

struct GroupInfo {
  id @0 :UInt32;                 # from 0, in the order groups were formed (probe order)
  devices @1 :List(Text);        # every function of the group (ports too), by RID
  smmu @2 :Text;                 # the SMMU instance its devices sit behind
  reason @3 :Text;               # why these devices share it, e.g. "02:00.0 above lacks ACS"
  defaultType @4 :DefaultDomainType;
  defaultDomain @5 :UInt32;      # DomainInfo.id of its default domain
  on @6 :GroupDomain;
  domain @7 :UInt32;             # DomainInfo.id of the domain it sits on
  owners @8 :UInt32;             # owner_cnt: 0 when unowned
  owner @9 :UInt64;              # the owner cookie while owned
  exclusive @10 :Bool;           # claimed with claimGroup (no further claims)
  pasids @11 :List(PasidInfo);   # the group's pasid_array, by PASID
  maxPasids @12 :UInt32;         # the largest max_pasids among its devices (0: no PASID)
}

interface GroupManager {
  groups @0 () -> (groups :List(GroupInfo));
  # Every group, by id.

  groupOf @1 (device :Text) -> (errno :Common.Errno, group :GroupInfo);
  # iommu_group_get: eNoDev for an unknown device, eInval for a malformed BDF.

  claimGroup @2 (group :UInt32, owner :UInt64) -> (errno :Common.Errno, ownership :Ownership);
  # iommu_group_claim_dma_owner: exclusive. ePerm: already owned (even by this owner); eBusy:
  # the group is not on its default domain; eInval: owner 0; eNoEnt: no such group. Moves the
  # group onto its blocking domain.

  claimDevice @3 (device :Text, owner :UInt64) -> (errno :Common.Errno, ownership :Ownership);
  # iommu_device_claim_dma_owner: shared between claims with the same owner cookie (counted in
  # `owners`). ePerm: owned by another cookie, or claimed exclusively; eBusy and eInval as
  # claimGroup; eNoDev: unknown device. The first claim moves the group onto blocking.

  attachDevice @4 (device :Text, domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # iommu_attach_device, the kernel-driver path: no ownership needed (Linux checks none).
  # eInval unless the device's group has that one device; eBusy unless the group sits on its
  # default or blocking domain; otherwise as Ownership.attach.

  detachDevice @5 (device :Text) -> (errno :Common.Errno);
  # iommu_detach_device: the group goes back to its core domain — blocking while owned, default
  # otherwise. eInval unless the group has that one device.
}

interface Ownership {
  # One claim. Every call fails (a broken contract) once it is released.

  info @0 () -> (group :GroupInfo, device :Text);
  # The group as it is now; `device` is the claimed device ("" for a group claim).

  attach @1 (domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # iommu_attach_group. eBusy unless the group sits on its default or blocking domain. Every
  # device of the group gets `domain` in turn; if one fails (e.g. eInval: the domain was
  # finalised for another SMMU), those already moved are put back and its errno returned.

  replace @2 (domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # iommu_group_replace_domain: straight from the current domain to `domain`, with no
  # blocking window; rolled back device by device on failure.

  detach @3 () -> (errno :Common.Errno);
  # iommu_detach_group: back onto the blocking domain.

  attachPasid @4 (pasid :UInt32, domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # iommu_attach_device_pasid: eInval for pasid 0 or ≥ max_pasids (the claimed device's, or
  # the group's largest); eBusy when the group's slot for `pasid` is taken. Set on every device
  # of the group that has PASIDs; rolled back on failure.

  replacePasid @5 (pasid :UInt32, domain :Dom.Domain) -> (errno :Common.Errno, message :Text);
  # iommu_replace_device_pasid: the slot's domain changes with no blocked window. eNoEnt when
  # nothing is attached to `pasid`.

  detachPasid @6 (pasid :UInt32) -> (errno :Common.Errno);
  # iommu_detach_device_pasid: the blocked domain on `pasid` and the slot freed. eNoEnt when
  # nothing is attached to it.

  release @7 () -> ();
  # iommu_group_release_dma_owner / iommu_device_release_dma_owner, now rather than when the
  # capability is dropped. The last claim's release detaches every PASID and puts the group
  # back on its default domain.
}
