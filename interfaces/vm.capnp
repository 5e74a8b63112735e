@0xeebdda6aae7f3601;
# The VM model (hw/vm): a virtual machine as KVM sees it — its guest-physical memory map
# (memslots: GPA -> PA), changes to that map with notices to subscribers (the MMU-notifier
# analog), pinning, and access to guest memory by guest-physical address.
#
# Design stance: guest memory is a region of nestbed's one shared physical memory, so bulk data
# never crosses RPC — code in another process that maps physical memory (hw/mem's PhysMem)
# reads `memslots()` or `translate()` and then loads and stores directly; `read`/`write` here
# are for small things. Capability-based: a stage-2 shadow holds a `Vm` and subscribes to it;
# nothing names it. Expected outcomes (an overlapping slot, a pinned page, a GPA outside every
# slot) are errno results with Linux meanings, never exceptions.
#
# Methods that change the map mirror KVM_SET_USER_MEMORY_REGION (virt/kvm/kvm_main.c
# __kvm_set_memory_region): add is KVM_MR_CREATE, delete KVM_MR_DELETE, move KVM_MR_MOVE,
# setMemslotFlags KVM_MR_FLAGS_ONLY. Changes run one at a time, in the order they arrive.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";

# ======================================================================================
# The memory map

struct Memslot {
  # One memslot: a contiguous GPA range backed by a contiguous run of physical memory.
  slot @0 :UInt32;       # the slot's id, 0..32767 (KVM's user memslot numbers)
  gpa @1 :UInt64;        # guest-physical base, 4 KiB aligned
  size @2 :UInt64;       # bytes, a non-zero multiple of 4 KiB
  pa @3 :UInt64;         # physical base of the backing, 4 KiB aligned; GPA g maps to
                         # pa + (g - gpa)
  readonly @4 :Bool;     # KVM_MEM_READONLY: guest writes fault; DMA may only read
  allocated @5 :Bool;    # the backing came from hw/mem's frame allocator ("allocate": zeroed,
                         # aligned like the GPA where memory allows); false: placed at a fixed
                         # `pa`, contents as found. The VM holds the frames either way and
                         # returns them when the slot is deleted.
}

struct GpaRange {
  gpa @0 :UInt64;
  size @1 :UInt64;       # bytes
}

enum MemslotChangeKind {
  add @0;       # a new slot: nothing was mapped in its range before
  delete @1;    # the slot goes away: its range is unmapped after
  move @2;      # the slot's GPA changes, its backing stays: old range unmapped, new one mapped
  flags @3;     # the slot's flags (readonly) change: same range, same backing
}

struct MemslotChange {
  # What a listener is told, once before the change takes effect and once after.
  kind @0 :MemslotChangeKind;
  seq @1 :UInt64;         # the change's number in this VM, from 1; before and after carry the
                          # same number
  slot @2 :UInt32;
  range @3 :GpaRange;     # before(): the GPA range whose mapping is about to change (the old
                          # range; for add, the new one). after(): the range whose mapping
                          # changed (the new range; for delete, the old one).
  oldSlot @4 :Memslot;    # the slot before the change; unset for add
  newSlot @5 :Memslot;    # the slot after the change; unset for delete
}

interface MemslotListener {
  # A subscriber to memslot changes, e.g. a stage-2 shadow (the MMU-notifier analog of
  # mmu_notifier_ops.invalidate_range_start / _end).
  #
  # WARNING: a listener must not change this VM's memslots from inside a notice: changes run
  # one at a time, so the change would wait for the notice that waits for it.

  before @0 (change :MemslotChange) -> ();
  # The mapping of `change.range` is about to change. The change waits until every listener
  # has returned: unmap, invalidate and sync before returning, so no DMA can reach the old
  # pages afterwards. Meanwhile the VM still answers with the old map (memslots, translate,
  # guest access) and refuses pins that touch the range (eBusy).

  after @1 (change :MemslotChange) -> ();
  # The change has taken effect: `memslots()` and `translate()` give the new map. Remap here.
  # The change's caller gets its result once every listener has returned.
  #
  # A listener that throws or disconnects (from either notice) is dropped — it gets no further
  # notices — and counted (`listener_failures`); the change itself goes ahead: memory changes
  # cannot be vetoed.
}

struct PinnedRun {
  # A pinned GPA range within one slot, and the physical memory behind it.
  gpa @0 :UInt64;
  pa @1 :UInt64;
  size @2 :UInt64;       # bytes
  slot @3 :UInt32;
  readonly @4 :Bool;     # the slot's flag when pinned
}

struct VmInfo {
  name @0 :Text;          # the manifest instance name
  ipaBits @1 :UInt8;      # the guest-physical address space: GPAs below 2^ipaBits
                          # (KVM_VM_TYPE_ARM_IPA_SIZE)
  slots @2 :UInt32;       # memslots now
  guestBytes @3 :UInt64;  # their total size
  pinnedPages @4 :UInt64; # distinct 4 KiB pages pinned at least once
  listeners @5 :UInt32;   # subscribed listeners
}

struct NewMemslot {
  # addMemslot's parameters.
  slot @0 :UInt32;        # a free slot id, 0..32767
  gpa @1 :UInt64;         # 4 KiB aligned; [gpa, gpa + size) below 2^ipaBits and clear of
                          # every other slot
  size @2 :UInt64;        # a non-zero multiple of 4 KiB
  readonly @3 :Bool;
  union {
    allocate @4 :Void;    # backing from the frame allocator, contiguous and zeroed (default)
    pa @5 :UInt64;        # backing at this physical address (4 KiB aligned, inside memory,
                          # frames not in use); its contents are kept
  }
}

struct MemslotResult {
  errno @0 :Common.Errno;
  message @1 :Text;       # why, when errno is not `ok`
  memslot @2 :Memslot;    # on success: the slot as it now is (add, move, flags), as it was
                          # (delete)
}

# ======================================================================================
# The VM

interface Vm {
  info @0 () -> (info :VmInfo);

  memslots @1 () -> (slots :List(Memslot));
  # Every slot, by ascending GPA: the whole GPA -> PA map, for a stage-2 shadow to build from
  # and for code with a PhysMem mapping to access guest memory directly.

  # ---- Changes (one at a time; each notifies every listener before and after) ----

  addMemslot @2 NewMemslot -> MemslotResult;
  # KVM_MR_CREATE. eExist: the slot id is taken, or the range overlaps another slot. eInval: a
  # slot id above 32767, a GPA or size not a multiple of 4 KiB, a zero size, `pa` misaligned or
  # outside physical memory. eFault: the range reaches past 2^ipaBits (arm64 KVM's answer).
  # eBusy: frames at `pa` are in use. eNoMem: no contiguous run to allocate. Refused changes
  # send no notice.

  deleteMemslot @3 (slot :UInt32) -> MemslotResult;
  # KVM_MR_DELETE; the backing frames are returned. eNoEnt: no such slot. eBusy: a page of it
  # is pinned.

  moveMemslot @4 (slot :UInt32, gpa :UInt64) -> MemslotResult;
  # KVM_MR_MOVE: the slot appears at `gpa` with the same backing (and contents). eNoEnt,
  # eInval (misaligned), eExist (overlaps another slot), eFault (past 2^ipaBits), eBusy
  # (pinned). Moving a slot to where it is does nothing (no notice).

  setMemslotFlags @5 (slot :UInt32, readonly :Bool) -> MemslotResult;
  # KVM_MR_FLAGS_ONLY for KVM_MEM_READONLY (which real KVM refuses to change; the model allows
  # it so a shadow's permission updates can be exercised). Allowed on pinned slots. eNoEnt.
  # Setting the flag it already has does nothing (no notice).

  subscribe @6 (listener :MemslotListener) -> (subscription :Subscription);
  # Sends `listener` every change's notices until `subscription` is cancelled. A change already
  # under way when it subscribes is not notified to it.

  # ---- Pinning (vfio_pin_pages / pin_user_pages: the root domain records the PAs) ----

  pin @7 (gpa :UInt64, size :UInt64) -> (errno :Common.Errno, message :Text,
                                         runs :List(PinnedRun));
  # Pins every 4 KiB page of [gpa, gpa + size), which may span adjacent slots; pins count (a
  # page pinned twice needs two unpins). Returns the backing, one run per slot touched, by
  # ascending GPA. A slot with a pinned page cannot be deleted or moved (eBusy). eInval:
  # misaligned or zero size. eFault: a page is in no slot (nothing is pinned). eBusy: a change
  # touching the range is under way.

  unpin @8 (gpa :UInt64, size :UInt64) -> (errno :Common.Errno, message :Text);
  # Drops one pin from every page of the range. eInval: misaligned, zero size, or a page of the
  # range is not pinned (nothing is unpinned).

  # ---- Guest memory by GPA (kvm_read_guest / kvm_write_guest) ----

  translate @9 (gpa :UInt64) -> (errno :Common.Errno, pa :UInt64, slot :UInt32, bytes :UInt64,
                                 readonly :Bool);
  # GPA -> PA. `bytes`: how far the same slot (so contiguous physical memory) continues from
  # `gpa`. eFault: the GPA is in no slot.

  read @10 (gpa :UInt64, length :UInt32) -> (errno :Common.Errno, data :Data);
  # Up to 1 MiB, possibly across adjacent slots. eInval: length 0 or above 1 MiB. eFault: a
  # byte is in no slot (nothing read).

  write @11 (gpa :UInt64, data :Data) -> (errno :Common.Errno);
  # Up to 1 MiB. eFault: a byte is in no slot or in a readonly slot (nothing written), as
  # kvm_write_guest. eInval: empty or above 1 MiB.

  load64 @12 (gpa :UInt64) -> (errno :Common.Errno, value :UInt64);
  # One little-endian 64-bit word, atomically (as PhysMem.load64). eInval: not 8-byte aligned.
  # eFault: in no slot.

  store64 @13 (gpa :UInt64, value :UInt64) -> (errno :Common.Errno);
  # eInval: not 8-byte aligned. eFault: in no slot, or readonly.

  interface Subscription {
    # Held by the subscriber.
    cancel @0 () -> ();
    # Unsubscribes: the subscriber mirrors nothing of the VM's memory any more. A subscription
    # dropped without cancel() (its holder's process died) leaves its listener lost: every later
    # change fails with DISCONNECTED, since what the listener mirrored (a stage 2 the SMMU still
    # walks) may still reach memory the change would take away.
  }
}
