@0xef57abd1f37804a2;
# The stage2_shadow component: per VM, a nest-parent stage-2 domain mirroring the VM's
# guest-physical → physical map (its memslots), kept coherent as the map changes — the
# hypervisor's half of nesting, over which a vIOMMU and a guest-owned stage 1 sit.
#
# Design stance: a shadow is a capability. shadow() allocates the stage-2 domain through
# domain_allocator (allocPaging with NEST_PARENT) and subscribes to the VM's memslot notices
# (interfaces/vm.capnp MemslotListener, the MMU-notifier analog); dropping the last reference to
# the `Shadow` stops following the VM and unmaps everything it mapped, so a domain someone still
# holds never keeps a stale GPA → PA translation. The shadow never names the VM or the domain
# otherwise, and never touches the page table itself: it maps and unmaps through the Domain,
# which issues the TLB invalidations and the CMD_SYNC through smmu_queue before returning.
#
# Coherence (the contract with the VM's notices):
#   before(change)  the GPA range about to change is unmapped from the domain; Domain.unmap has
#                   issued TLBI_S2_IPA (range form with RIL; with domain_allocator's kernel =
#                   "7.1" and no RIL, TLBI_S12_VMALL for a large range) + CMD_SYNC, then
#                   TLBI_NH_ALL for the guest's combined stage-1+2 entries + CMD_SYNC, before
#                   this returns — so no DMA reaches a page once its slot is deleted or moved.
#   after(change)   the range whose mapping changed is mapped as the VM now has it.
# Each memslot is mapped as one run: the domain splits it into the largest blocks that the GPA
# and PA alignment allow (1 GiB / 2 MiB / 4 KiB with a 4K granule). Permissions: read, write
# unless the slot is readonly (KVM_MEM_READONLY: DMA may only read), cacheable.
#
# Two implementations answer ARCHITECTURE.md's debate 2 (a KVM-owned stage 2 reading KVM's
# memslots, against one walking the pinned frames the root domain holds):
#   stage2_shadow/kvm_read    computes GPA → PA by reading the VM's memslots (Vm.memslots) on
#                             every update and walking them for the changed range;
#   stage2_shadow/pinned_pfn  pins every slot at shadow time (Vm.pin: the PFNs the root domain
#                             holds), keeps its own record of GPA → PFN runs and maps from it,
#                             updating the record from the notices' own contents — it never asks
#                             the VM for a translation afterwards. Setting `hold_pins`: keep the
#                             pins (the iommufd IOAS behaviour: the VM then refuses to delete or
#                             move a pinned slot, eBusy); default false — pin, record, unpin.
# Both produce the same stage-2 contents for the same history; stats() counts what each update
# costs (VM RPCs, slot or record entries walked, domain RPCs, leaf writes, TLBI commands).
#
# Expected outcomes are errno results with Linux meanings; exceptions mean a broken contract or
# a dead peer.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Dom = import "/interfaces/domain.capnp";
using Alloc = import "/interfaces/domain-allocator.capnp";
using Vm = import "/interfaces/vm.capnp";

struct ShadowRun {
  # One run the shadow has mapped: a memslot (or the part of one a change left), GPA → PA.
  gpa @0 :UInt64;
  pa @1 :UInt64;
  size @2 :UInt64;        # bytes
  readonly @3 :Bool;      # mapped read-only (the slot's KVM_MEM_READONLY)
  slot @4 :UInt32;        # the memslot it mirrors
}

struct LeafCount {
  size @0 :UInt64;        # a leaf size of the domain (4 KiB, 2 MiB, 1 GiB with a 4K granule)
  count @1 :UInt64;       # leaves of that size the shadow's runs occupy now
}

struct ShadowInfo {
  impl @0 :Text;             # "stage2_shadow/kvm_read" or "stage2_shadow/pinned_pfn"
  vm @1 :Text;               # the VM's name (VmInfo.name)
  domain @2 :UInt32;         # the stage-2 domain's id (DomainInfo.id)
  vmid @3 :UInt16;
  runs @4 :UInt32;           # runs mapped now (one per memslot)
  mappedBytes @5 :UInt64;
  leaves @6 :List(LeafCount);  # by ascending size, sizes with no leaf left out
  changes @7 :UInt64;        # memslot changes followed (after-notices handled)
  lastSeq @8 :UInt64;        # MemslotChange.seq of the last change followed; 0 = none yet
  errors @9 :UInt64;         # updates that failed (a map or unmap the domain refused): the
                             # shadow may not match the VM; see the component's log
  following @10 :Bool;       # subscribed to the VM's notices
  pinnedBytes @11 :UInt64;   # pinned_pfn with hold_pins: guest bytes it holds pinned
}

interface Stage2Shadow {
  # The component's main capability.

  shadow @0 (vm :Vm.Vm, target :Alloc.AllocTarget)
      -> (errno :Common.Errno, message :Text, shadow :Shadow, domain :Dom.Domain);
  # A nest-parent stage-2 domain for `target` (the SMMU instance or device the vIOMMU will be
  # on: DomainAllocator.allocPaging with nestParent) mapping every memslot of `vm`, and the
  # shadow that keeps it coherent. `domain` is the one `shadow.domain()` returns: hand it to
  # SmmuQueue.allocViommu. Errors: what allocPaging refuses (eNoDev, eInval, eOpNotSupp,
  # eNoSpc), passed on; eRange: the VM's IPA space (VmInfo.ipaBits) is wider than the domain's
  # input (DomainInfo.ias); eBusy: a memslot change was under way over a slot being pinned
  # (pinned_pfn; retry); eNoMem or another map errno: the domain could not map a slot (nothing
  # is left mapped). A change already under way when shadow() subscribes (its notices went out
  # before) is not seen: call it while the VM's map is quiet.
}

interface Shadow {
  # One VM's shadow. Dropping the last reference unsubscribes from the VM, unmaps every run
  # (with invalidation) and, with hold_pins, unpins.

  domain @0 () -> (domain :Dom.Domain);
  # The nest-parent stage-2 domain (the same capability every time).

  info @1 () -> (info :ShadowInfo);

  mappings @2 () -> (runs :List(ShadowRun));
  # What the shadow has mapped, by ascending GPA: its own record of the domain's contents, to
  # compare with the VM's memslots or with Domain.iovaToPhys.
}
