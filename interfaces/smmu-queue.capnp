@0xf3a9d1c47be2068d;
# The smmu_queue component: everything that puts commands into one SMMU and takes events out of
# it, for the host and for guests (iommufd's vIOMMU, vDEVICE, HWPT_INVALIDATE and vEVENTQ).
#
# Design stance: commands and events live in rings in shared physical memory, as on a machine;
# RPC carries batches (N x 16-byte command blobs, lists of typed invalidations), never one call
# per command. One instance drives one SMMU (its `smmu` role). Expected outcomes — an illegal
# command, a guest entry that cannot be converted, a SYNC that never completes — are typed
# results with Linux errno meanings, never RPC exceptions.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Smmu = import "/interfaces/smmuv3.capnp";
using Dom = import "/interfaces/domain.capnp";

# ======================================================================================
# Host side

enum GuestPath {
  # How guests' invalidations reach the SMMU (the manifest's `guest_path`).
  native @0;     # raw guest commands checked, rewritten (VMID, vSID -> SID) and forwarded
  generic @1;    # decoded into hardware-neutral descriptors, re-encoded on the host side
  swVcmdq @2;    # a software virtual command queue: a ring in guest memory and a doorbell
}

struct StreamTableInfo {
  # The stream table smmu_queue allocated and programmed at reset. domain_allocator writes STEs
  # into it (and, two-level, allocates level-2 tables and writes level-1 descriptors).
  pa @0 :UInt64;          # STRTAB_BASE.ADDR: the linear table, or the level-1 table
  log2Size @1 :UInt8;     # STRTAB_BASE_CFG.LOG2SIZE: StreamIDs covered
  twoLevel @2 :Bool;      # STRTAB_BASE_CFG.FMT
  split @3 :UInt8;        # STRTAB_BASE_CFG.SPLIT (two-level): SIDs per level-2 table = 2^split
}

struct QueueInfo {
  smmu @0 :Text;                    # the SMMU instance's name (SmmuInfo.name)
  features @1 :Smmu.SmmuFeatures;
  idr @2 :List(UInt32);             # IDR0..IDR5 as probed
  streamTable @3 :StreamTableInfo;
  cmdqPa @4 :UInt64;
  cmdqLog2Size @5 :UInt8;
  evtqPa @6 :UInt64;
  evtqLog2Size @7 :UInt8;
  batchSize @8 :UInt32;             # commands per batch (Linux's CMDQ_BATCH_ENTRIES = 64)
  guestPath @9 :GuestPath;
}

enum HostOp {
  # The commands the host driver issues (facts 1.2/1.3), built by smmu_queue so that callers
  # never encode fields — and never need to know whether the SMMU has range invalidation.
  cfgiSte @0;       # sid
  cfgiCd @1;        # sid, ssid
  cfgiCdAll @2;     # sid
  cfgiAll @3;       # every STE (CFGI_STE_RANGE with RANGE = 31)
  tlbiNhAll @4;     # vmid
  tlbiNhAsid @5;    # asid, vmid
  tlbiNhVa @6;      # asid, vmid, addr, size, granule, pageSize, leaf: range form with RIL,
                    # one command per granule without
  tlbiS12Vmall @7;  # vmid
  tlbiS2Ipa @8;     # vmid, addr, size, granule, pageSize, leaf
  tlbiNsnhAll @9;
  atcInv @10;       # sid, ssv/ssid, addr, size (0: the whole ATC)
  sync @11;         # an explicit CMD_SYNC: ends one of Linux's batch submissions (one is
                    # appended at the end anyway)
}

struct HostInvalidation {
  op @0 :HostOp;
  sid @1 :UInt32;
  ssid @2 :UInt32;
  ssv @3 :Bool;
  asid @4 :UInt16;
  vmid @5 :UInt16;
  addr @6 :UInt64;      # IOVA or IPA
  size @7 :UInt64;      # bytes from addr
  granule @8 :UInt64;   # the leaf size the entries were cached at (TTL hint); 0 = unknown
  pageSize @9 :UInt64;  # the domain's translation granule (its smallest page size)
  leaf @10 :Bool;       # only last-level entries (page-table.capnp Invalidation.leaf)
}

struct IllegalCommand {
  index @0 :UInt32;     # position in the submission, in 16-byte commands
  command @1 :Data;     # the 16 bytes as submitted
}

struct SubmitResult {
  errno @0 :Common.Errno;
  # ok; eIo: commands listed in `illegal` were refused by the SMMU (CERROR_ILL) and skipped,
  # every other command was executed; eTimedOut: a CMD_SYNC did not complete in time (the
  # commands after it were not executed); eInval: the blob is not a multiple of 16 bytes.
  executed @1 :UInt32;             # submitted commands the SMMU executed and a SYNC completed
  syncs @2 :UInt32;                # CMD_SYNCs: those appended and those submitted; `executed`
                                   # counts the submitted ones among the commands
  illegal @3 :List(IllegalCommand);
  message @4 :Text;                # what went wrong and where; empty when errno is ok
}

interface EventSink {
  # A subscriber for one StreamID's events (e.g. a device owner's fault handler).
  deliver @0 (events :List(Smmu.Fault)) -> ();
}

interface SmmuQueue {
  info @0 () -> (info :QueueInfo);

  submit @1 (commands :Data) -> (result :SubmitResult);
  # Raw 16-byte commands, written into the CMDQ ring in order in batches of `batchSize`; a
  # CMD_SYNC ends the submission (`sync_policy = "per_batch"`: every batch too) and is waited
  # on. A CMD_SYNC among the commands ends a batch there, as Linux's batch submit does.
  # Submissions are never interleaved. Example: 4 x 16 bytes of TLBI_NH_ASID.

  invalidate @2 (ops :List(HostInvalidation)) -> (result :SubmitResult);
  # Builds the commands for `ops` (range encoding when the SMMU has RIL) and submits them.
  # `result.illegal[i].index` counts built commands.

  subscribe @3 (sid :UInt32, sink :EventSink) -> (errno :Common.Errno, subscription :Smmu.Subscription);
  # Routes the events of `sid` to `sink` until `subscription` is dropped. eExist when `sid`
  # already has a subscriber; eInval for a SID beyond the SMMU's SIDSIZE.

  drainEvents @4 () -> (read :UInt32, lost :Bool);
  # Reads the EVTQ now (it is also read on every EVTQ interrupt) and returns once every record
  # read has been delivered. `lost`: the SMMU reported an overflow since the last drain.

  unrouted @5 (clear :Bool) -> (events :List(Smmu.Fault), overflows :UInt64, dropped :UInt64);
  # Events no subscriber took, oldest first, from a bounded log (`unrouted_log` entries);
  # `overflows`: EVTQ overflows detected; `dropped`: records pushed out of the full log.

  allocViommu @6 (s2Domain :Dom.Domain, eventqDepth :UInt32 = 64)
      -> (errno :Common.Errno, viommu :Viommu, message :Text);
  # IOMMU_VIOMMU_ALLOC over a nest-parent stage-2 domain of this SMMU; the vIOMMU's VMID is the
  # domain's. eInval: not a nest-parent stage-2 domain, or finalised for another SMMU;
  # eOpNotSupp: the SMMU cannot nest.
}

# ======================================================================================
# Guest side: the vIOMMU

struct Vdevice {
  vsid @0 :UInt64;   # the guest's virtual StreamID (iommufd virt_id)
  sid @1 :UInt32;    # the device's physical StreamID
}

struct ViommuInfo {
  vmid @0 :UInt16;
  smmu @1 :Text;
  guestPath @2 :GuestPath;
  vdevices @3 :List(Vdevice);   # sorted by vSID
  eventqDepth @4 :UInt32;
}

struct GuestResult {
  # IOMMU_HWPT_INVALIDATE's outcome: `entryNum` entries were handled before the first that
  # failed (all of them when errno is ok).
  errno @0 :Common.Errno;   # eIo: an entry the path cannot accept (named in `message`)
  entryNum @1 :UInt32;
  message @2 :Text;
}

enum GenericCache {
  iotlb @0;         # the SMMU TLB (stage 1 entries of this vIOMMU's VMID)
  deviceTlb @1;     # a device's ATC (PCIe ATS), all of its SubstreamIDs
  context @2;       # a device's cached context descriptors, all of its SubstreamIDs
}

enum GenericScope {
  all @0;           # the whole cache (iotlb: every ASID of the VMID)
  asid @1;          # iotlb: one address space
  range @2;         # iotlb: [addr, addr + size) of one ASID; deviceTlb: of the device
}

struct GenericInvalidation {
  # The hardware-neutral descriptor of the `generic` path (the generic uAPI argued for in the
  # nesting threads). It has no TTL hint, no SubstreamID and no "every ASID" range: commands
  # that need them are widened, and the widening is counted in stats (lost_precision_*).
  cache @0 :GenericCache;
  scope @1 :GenericScope;
  asid @2 :UInt32;
  addr @3 :UInt64;
  size @4 :UInt64;
  granule @5 :UInt64;   # the translation granule the guest used (its smallest page size)
  leaf @6 :Bool;
  vsid @7 :UInt64;      # deviceTlb and context: the device, by its guest StreamID
}

struct VeventRecord {
  # One vEVENTQ record (IOMMU_VEVENTQ_ALLOC read()): the header and the payload.
  sequence @0 :UInt32;      # 0, 1, 2 ... per vIOMMU (wraps at INT_MAX)
  lostEvents @1 :Bool;      # IOMMU_VEVENTQ_FLAG_LOST_EVENTS: this record is the loss marker,
                            # queued at the tail as soon as the queue overflowed; it has no
                            # payload (`raw` empty, `fault` unset) and takes a sequence number,
                            # the lost records take none
  raw @2 :List(UInt64);     # the 4 qwords of the SMMU's record with the SID replaced by the vSID
  fault @3 :Smmu.Fault;     # the same record decoded (its `sid` is the vSID)
}

# The software VCMDQ's register offsets (Viommu.vcmdq), shared by its server and guest drivers.
const vcmdqConfig :UInt32 = 0x00;    # bit 0 EN
const vcmdqStatus :UInt32 = 0x04;    # bit 0 ENABLED (CONFIG's ack)
const vcmdqProd :UInt32 = 0x08;      # writing it is the doorbell
const vcmdqCons :UInt32 = 0x0c;      # ERR in [30:24] (CERROR_ILL = 1), as CMDQ_CONS
const vcmdqGerror :UInt32 = 0x10;    # bit 0 CMDQ_ERR
const vcmdqGerrorn :UInt32 = 0x14;   # write GERROR's value to acknowledge
const vcmdqBase :UInt32 = 0x18;      # 64-bit, Q_BASE format with a guest-physical ADDR

interface Viommu {
  # One vIOMMU: dropping the last reference destroys it and its vDEVICEs.

  info @0 () -> (info :ViommuInfo);

  addVdevice @1 (vsid :UInt64, sid :UInt32) -> (errno :Common.Errno, message :Text);
  # IOMMU_VDEVICE_ALLOC. eExist: `vsid` is taken, or the device already has a vDEVICE here;
  # eInval: `sid` beyond the SMMU's SIDSIZE.

  removeVdevice @2 (vsid :UInt64) -> (errno :Common.Errno);
  # eNoEnt when there is no such vDEVICE.

  invalidate @3 (commands :Data) -> (result :GuestResult);
  # IOMMU_HWPT_INVALIDATE with ARM_SMMUV3 entries: raw 16-byte guest commands. `native`
  # converts them as arm_vsmmu_convert_user_cmd does and forwards them; `generic` decodes them
  # into GenericInvalidation descriptors and hands those to invalidateGeneric; `swVcmdq`
  # converts them as `native` does: this is its guests' emulated main queue, for the commands
  # outside the VCMDQ subset (as a Tegra241 guest sends them). An empty blob probes support.

  invalidateGeneric @4 (entries :List(GenericInvalidation)) -> (result :GuestResult);
  # The generic path's host interface: re-encodes descriptors into SMMUv3 commands.
  # eOpNotSupp unless the vIOMMU's path is `generic`.

  vcmdq @5 () -> (errno :Common.Errno, queue :Smmu.Mmio);
  # `swVcmdq`: the guest's virtual command queue registers (one per vIOMMU), at the offsets of
  # the vcmdq* constants above.
  # The ring lives in guest memory; its GPAs are translated through the vIOMMU's stage 2.
  # Accepted: TLBI_NH_ASID, TLBI_NH_VA, ATC_INV, CMD_SYNC; any other entry stops the queue with
  # CONS.ERR = CERROR_ILL at that entry. eOpNotSupp unless the path is `swVcmdq`.

  readEvents @6 (max :UInt32 = 64) -> (records :List(VeventRecord));
  # Reads the SMMU's EVTQ first, then pops up to `max` vEVENTQ records.
}
