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
}

interface Domain {
  info @0 () -> (info :DomainInfo);

  iovaToPhys @1 (iova :UInt64) -> (errno :Common.Errno, pa :UInt64);
  # eNoEnt when nothing is mapped at `iova`; eOpNotSupp for a domain without a page table.
}
