@0xb5a8d2c4e9f17308;
# The scenario language: experiments as Cap'n Proto text, parsed at run time.
#
# A scenario file declares `const scenario :Scenario = (...)` after
# `using import "/interfaces/scenario.capnp".Scenario;`. Steps run in order against a composed
# system, only through the composer's root capability and components' interfaces — exactly what
# an external client on `nestbed serve`'s socket could do.
#
# Adding a step kind: one field in `Step`'s union, one line in the typed-step table of
# system/script/runner.c++. A typed step is a call whose parameters are typed here (checked
# when the file is parsed) instead of written as text: the table names the field holding the
# target, the method, and the part of the results `saveAs` keeps.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using PageTable = import "/interfaces/page-table.capnp";
using DomainAllocator = import "/interfaces/domain-allocator.capnp";

struct Scenario {
  description @0 :Text;
  steps @1 :List(Step);
}

struct Step {
  label @0 :Text;
  # Shown in the report; default: a summary such as "counter.add".

  saveAs @1 :Text;
  # Stores the step's result (see Call.result) under this name. Later steps use it as `$name`:
  # in `args` text (numbers, text, enums are substituted textually), as a call target (a saved
  # capability), or in `capArgs`.

  expect @2 :Expect;
  # Expectations checked after the step. Default: the step succeeds.

  union {
    call @3 :Call;
    # Any method of any interface, by name, arguments in Cap'n Proto text.

    repeat @4 :Repeat;
    # Runs `steps` `count` times with a counter usable as `$<counter>` in their arguments.

    check @5 :Void;
    # Does nothing: only `expect` (counters) is checked. For invariants between steps.

    # ---- Typed steps (see the table in system/script/runner.c++) ----

    createTable @6 :CreateTableStep;   # page_table: PageTableEngine.create; saveAs keeps the table
    map @7 :MapStep;                   # page_table: PageTable.map
    unmap @8 :UnmapStep;               # page_table: PageTable.unmap
    lookup @9 :LookupStep;             # page_table: PageTable.iovaToPhys; saveAs keeps the PA
    dma @10 :DmaStep;                  # hw/endpoint: Endpoint.dma; saveAs keeps the bytes read
    mmioRead @11 :MmioReadStep;        # hw/smmuv3: Mmio.read; saveAs keeps the value
    mmioWrite @12 :MmioWriteStep;      # hw/smmuv3: Mmio.write
    submit @13 :SubmitStep;            # smmu_queue: SmmuQueue.submit of raw commands
    allocViommu @14 :AllocViommuStep;  # smmu_queue: SmmuQueue.allocViommu; saveAs keeps the vIOMMU
    addVdevice @15 :AddVdeviceStep;    # smmu_queue: Viommu.addVdevice
    removeVdevice @16 :RemoveVdeviceStep;  # smmu_queue: Viommu.removeVdevice
    guestInvalidate @17 :GuestInvalidateStep;  # a guest batch through the vIOMMU's guest path
    readEvents @18 :ReadEventsStep;    # smmu_queue: Viommu.readEvents; saveAs keeps the records
    memslotAdd @19 :MemslotAddStep;    # hw/vm: Vm.addMemslot; saveAs keeps the slot's pa
    memslotDelete @20 :MemslotDeleteStep;  # hw/vm: Vm.deleteMemslot
    memslotMove @21 :MemslotMoveStep;  # hw/vm: Vm.moveMemslot
    memslotFlags @22 :MemslotFlagsStep;  # hw/vm: Vm.setMemslotFlags
    pin @23 :PinStep;                  # hw/vm: Vm.pin; saveAs keeps the pinned runs
    unpin @24 :UnpinStep;              # hw/vm: Vm.unpin
    claimGroup @26 :ClaimGroupStep;    # group_manager: GroupManager.claimGroup; saveAs keeps the ownership
    claimDevice @27 :ClaimDeviceStep;  # group_manager: GroupManager.claimDevice; saveAs keeps the ownership
    release @28 :OwnershipStep;        # group_manager: Ownership.release
    attach @29 :AttachStep;            # group_manager: Ownership.attach (iommu_attach_group)
    replace @30 :AttachStep;           # group_manager: Ownership.replace
    detach @31 :OwnershipStep;         # group_manager: Ownership.detach
    attachPasid @32 :PasidStep;        # group_manager: Ownership.attachPasid
    replacePasid @33 :PasidStep;       # group_manager: Ownership.replacePasid
    detachPasid @34 :DetachPasidStep;  # group_manager: Ownership.detachPasid
    attachDevice @35 :AttachDeviceStep;  # group_manager: GroupManager.attachDevice (iommu_attach_device)
    detachDevice @36 :DetachDeviceStep;  # group_manager: GroupManager.detachDevice
    allocPaging @37 :AllocPagingStep;  # domain_allocator: allocPaging; saveAs keeps the domain
    allocIdentity @38 :AllocStaticStep;  # domain_allocator: allocIdentity; saveAs keeps the domain
    allocBlocked @39 :AllocStaticStep;   # domain_allocator: allocBlocked; saveAs keeps the domain
    allocNested @40 :AllocNestedStep;  # domain_allocator: allocNested; saveAs keeps the domain
    shadow @41 :ShadowStep;            # stage2_shadow: Stage2Shadow.shadow; saveAs keeps the Shadow
    guestAttach @42 :GuestAttachStep;  # a guest driver's tables, CD, vSTE; allocNested + attach
    guestMap @43 :GuestMapStep;        # the guest maps in its own stage-1 table
    guestUnmap @44 :GuestUnmapStep;    # the guest unmaps and invalidates through its path
    print @46 :Text;
    # Puts this text into the report, `$name` replaced by saved values (numbers that are
    # addresses or registers in hex): observing without an expectation.
    kill @47 :KillStep;
    # Fault injection: ends a process-placed instance's process and waits until the composer has
    # seen it end and, with `restart = "on-failure"`, until the new process serves. What was
    # wired to it then fails with DISCONNECTED naming it, unless its implementation recovers.
    # Map and unmap on a domain are the `map` and `unmap` steps with `table = "$domain"`
    # (Domain.map/unmap take the same runs and ranges as PageTable's).
  }

  record @45 :Text;
  # Puts the step's result (see Call.result) into the report under this name, whatever it is:
  # observing without failing. Addresses and registers are shown in hex.
  whenImpl @25 :List(ImplExpect);
  # Expectations that replace `expect` when the manifest runs an implementation: the first
  # entry whose `impl` some instance runs wins. One scenario then states where each design
  # fails, e.g. a "for the bus" allocation that group_centric grants and device_centric refuses.
}

struct ImplExpect {
  impl @0 :Text;       # a registry key, e.g. "domain_allocator/device_centric"
  expect @1 :Expect;
}

struct CreateTableStep {
  engine @0 :Text = "page_table";      # the page_table instance
  config @1 :PageTable.TableConfig;
}

struct MapStep {
  table @0 :Text;                      # a saved table ("$t")
  runs @1 :List(PageTable.MapRun);
}

struct UnmapStep {
  table @0 :Text;
  ranges @1 :List(PageTable.Range);
}

struct LookupStep {
  table @0 :Text;
  iova @1 :UInt64;
}

struct DmaStep {
  # A DMA from an endpoint (interfaces/endpoint.capnp DmaRequest). Expect bytes with
  # `expect.value` (the data read, e.g. "\"abc\""), or a fault with `expect.fault`.
  endpoint @0 :Text;                   # the hw/endpoint instance ("ep0")
  iova @1 :UInt64;
  length @2 :UInt64;                   # writes: 0 means the length of `data`
  write @3 :Bool;
  data @4 :Data;                       # writes: the bytes (a pattern when shorter than length)
  union {
    noSsid @5 :Void;
    ssid @6 :UInt32;                   # with this SubstreamID (PASID)
  }
  priv @7 :Bool;
  exec @8 :Bool;
  steFields @9 :SteFields;             # writes: the 64 bytes of an STE built by field (not with
  cdFields @10 :CdFields;              # `data`), or of a CD
}

struct MmioReadStep {
  smmu @0 :Text = "smmu0";             # the hw/smmuv3 instance
  offset @1 :UInt32;                   # register offset, e.g. 0x0 for IDR0
  size @2 :UInt8 = 4;                  # 4 or 8 bytes
}

struct MmioWriteStep {
  smmu @0 :Text = "smmu0";
  offset @1 :UInt32;
  value @2 :UInt64;
  size @3 :UInt8 = 4;
}

struct RawCommand {
  # One 16-byte SMMUv3 command (facts 1.3): raw words — (dw0 = 0x46) is a CMD_SYNC — or built
  # by its name with typed fields, encoded with util/smmuv3's layout:
  # (tlbiNhVa = (asid = 3, addr = 0x10000, leaf = true)), (cfgiSte = (sid = 0x100, leaf = true)),
  # (sync = ()). A field that does not fit its bits, or an address that is not 4 KiB aligned,
  # is an error before anything runs. A typed step's List(RawCommand) fills a `Data`
  # parameter, 16 little-endian bytes per command.
  dw0 @0 :UInt64;
  dw1 @1 :UInt64;
  union {
    raw @2 :Void;                       # dw0 and dw1 as given (the default)
    prefetchConfig @3 :CmdStream;       # CMD_PREFETCH_CONFIG 0x01: sid, ssv, ssid
    prefetchAddr @4 :CmdPrefetchAddr;   # CMD_PREFETCH_ADDR 0x02
    cfgiSte @5 :CmdCfgi;                # CMD_CFGI_STE 0x03: sid, leaf
    cfgiSteRange @6 :CmdCfgiRange;      # CMD_CFGI_STE_RANGE 0x04: 2^(range+1) SIDs from sid
    cfgiAll @7 :Void;                   # CMD_CFGI_STE_RANGE with RANGE = 31 (Linux's CFGI_ALL)
    cfgiCd @8 :CmdCfgi;                 # CMD_CFGI_CD 0x05: sid, ssid, leaf
    cfgiCdAll @9 :CmdStream;            # CMD_CFGI_CD_ALL 0x06: sid
    cfgiVmsPidm @10 :Void;              # CMD_CFGI_VMS_PIDM 0x07
    tlbiNhAll @11 :CmdTlbi;             # CMD_TLBI_NH_ALL 0x10: vmid
    tlbiNhAsid @12 :CmdTlbi;            # CMD_TLBI_NH_ASID 0x11: asid, vmid
    tlbiNhVa @13 :CmdTlbi;              # CMD_TLBI_NH_VA 0x12: asid, vmid, addr, leaf, range
    tlbiNhVaa @14 :CmdTlbi;             # CMD_TLBI_NH_VAA 0x13: vmid, addr, leaf, range
    tlbiEl3All @15 :Void;               # CMD_TLBI_EL3_ALL 0x18
    tlbiEl3Va @16 :CmdTlbi;             # CMD_TLBI_EL3_VA 0x1a: addr, leaf, range
    tlbiEl2All @17 :Void;               # CMD_TLBI_EL2_ALL 0x20
    tlbiEl2Asid @18 :CmdTlbi;           # CMD_TLBI_EL2_ASID 0x21: asid
    tlbiEl2Va @19 :CmdTlbi;             # CMD_TLBI_EL2_VA 0x22: asid, addr, leaf, range
    tlbiEl2Vaa @20 :CmdTlbi;            # CMD_TLBI_EL2_VAA 0x23: addr, leaf, range
    tlbiS12Vmall @21 :CmdTlbi;          # CMD_TLBI_S12_VMALL 0x28: vmid
    tlbiS2Ipa @22 :CmdTlbi;             # CMD_TLBI_S2_IPA 0x2a: vmid, addr (the IPA), leaf, range
    tlbiNsnhAll @23 :Void;              # CMD_TLBI_NSNH_ALL 0x30
    atcInv @24 :CmdAtcInv;              # CMD_ATC_INV 0x40
    priResp @25 :CmdPriResp;            # CMD_PRI_RESP 0x41
    resume @26 :CmdResume;              # CMD_RESUME 0x44
    stallTerm @27 :CmdStream;           # CMD_STALL_TERM 0x45: sid
    sync @28 :CmdSync;                  # CMD_SYNC 0x46
  }
}

struct CmdStream {
  sid @0 :UInt32;
  ssv @1 :Bool;                         # with a SubstreamID
  ssid @2 :UInt32;
}
struct CmdPrefetchAddr {
  sid @0 :UInt32;
  ssv @1 :Bool;
  ssid @2 :UInt32;
  addr @3 :UInt64;                      # 4 KiB aligned
  size @4 :UInt8;                       # log2 of the span in 4 KiB pages
}
struct CmdCfgi {
  sid @0 :UInt32;
  ssid @1 :UInt32;                      # CFGI_CD only
  leaf @2 :Bool;
}
struct CmdCfgiRange {
  sid @0 :UInt32;
  range @1 :UInt8;                      # 2^(range+1) StreamIDs, aligned at sid
}
struct CmdTlbi {
  # The fields a TLBI opcode does not take must stay 0 (they would be reserved bits).
  asid @0 :UInt16;
  vmid @1 :UInt16;
  addr @2 :UInt64;                      # VA or IPA, 4 KiB aligned
  leaf @3 :Bool;
  ttl @4 :UInt8;                        # leaf level hint, 0 = unknown
  tg @5 :UInt8;                         # range granule: 0 none, 1 4K, 2 16K, 3 64K
  num @6 :UInt8;                        # range: NUM + 1 pages of 2^SCALE
  scale @7 :UInt8;
}
struct CmdAtcInv {
  sid @0 :UInt32;
  ssv @1 :Bool;
  ssid @2 :UInt32;
  global @3 :Bool;
  addr @4 :UInt64;                      # 4 KiB aligned
  size @5 :UInt8;                       # log2 of the span in 4 KiB pages (52: everything)
}
struct CmdPriResp {
  sid @0 :UInt32;
  ssv @1 :Bool;
  ssid @2 :UInt32;
  grpid @3 :UInt16;
  resp @4 :UInt8;                       # 0 deny, 1 fail, 2 success
}
struct CmdResume {
  sid @0 :UInt32;
  stag @1 :UInt16;
  resp @2 :UInt8;                       # 0 terminate, 1 retry, 2 abort
}
struct CmdSync {
  cs @0 :UInt8;                         # completion signal: 0 none, 1 IRQ, 2 SEV
  msh @1 :UInt8;
  msiattr @2 :UInt8;
  msidata @3 :UInt32;
  msiaddr @4 :UInt64;                   # 4-byte aligned
}

struct SubmitStep {
  queue @0 :Text = "smmu_queue";       # the smmu_queue instance
  commands @1 :List(RawCommand);
}

struct AllocViommuStep {
  # A typed step's Text field whose method parameter is a capability names a saved one ("$d").
  queue @0 :Text = "smmu_queue";
  s2Domain @1 :Text;                   # a saved nest-parent stage-2 domain
  eventqDepth @2 :UInt32 = 64;
}

struct AddVdeviceStep {
  viommu @0 :Text;                     # a saved vIOMMU ("$v")
  vsid @1 :UInt64;
  sid @2 :UInt32;
}

struct RemoveVdeviceStep {
  viommu @0 :Text;
  vsid @1 :UInt64;
}

struct ReadEventsStep {
  viommu @0 :Text;
  max @1 :UInt32 = 64;
}

struct GuestInvalidateStep {
  # One guest batch, issued as a guest driver would on the vIOMMU's path (system/guest): native
  # and generic through Viommu.invalidate, sw_vcmdq through a ring in guest memory (commands
  # outside the VCMDQ subset through the trapped main queue). The results are GuestResult:
  # expect `errno` and `fields` on `entryNum`.
  viommu @0 :Text;
  commands @1 :List(RawCommand);
  ring :group {
    # sw_vcmdq only, read on the vIOMMU's first guest step: where the guest's ring lives.
    gpa @2 :UInt64;                    # aligned to its size (4 KiB at least)
    log2Entries @3 :UInt8 = 8;
    s2Domain @4 :Text;                 # a saved stage-2 domain: guest-physical -> physical
  }
  runs @5 :List(CommandRun);           # more commands, after `commands`
}

struct CommandRun {
  # `count` commands: the first is (dw0, dw1), each next one adds `dw1Stride` to dw1 — e.g.
  # TLBI_NH_VA of `count` consecutive pages. With a scenario parameter as the count
  # (`count = ${batch:-64}`), one scenario sweeps the guest's batch size.
  dw0 @0 :UInt64;
  dw1 @1 :UInt64;
  count @2 :UInt32 = 1;
  dw1Stride @3 :UInt64;
}

# The VM model's steps (interfaces/vm.capnp): a refused change or pin is an errno, expected
# with `expect.errno` (eExist, eNoEnt, eInval, eFault, eBusy, eNoMem); every change notifies the
# VM's listeners before and after it takes effect.

struct MemslotAddStep {
  vm @0 :Text = "vm0";                 # the hw/vm instance
  slot @1 :UInt32;                     # a free slot id, 0..32767
  gpa @2 :UInt64;                      # 4 KiB aligned
  size @3 :UInt64;                     # bytes, a multiple of 4 KiB
  readonly @4 :Bool;
  union {
    allocate @5 :Void;                 # backing from the frame allocator (default)
    pa @6 :UInt64;                     # backing at this physical address
  }
}

struct MemslotDeleteStep {
  vm @0 :Text = "vm0";
  slot @1 :UInt32;
}

struct MemslotMoveStep {
  vm @0 :Text = "vm0";
  slot @1 :UInt32;
  gpa @2 :UInt64;                      # the slot's new base; its backing stays
}

struct MemslotFlagsStep {
  vm @0 :Text = "vm0";
  slot @1 :UInt32;
  readonly @2 :Bool;
}

struct PinStep {
  vm @0 :Text = "vm0";
  gpa @1 :UInt64;                      # 4 KiB aligned; the range may span adjacent slots
  size @2 :UInt64;
}

struct UnpinStep {
  vm @0 :Text = "vm0";
  gpa @1 :UInt64;
  size @2 :UInt64;
}

struct ClaimGroupStep {
  groups @0 :Text = "groups";          # the group_manager instance
  group @1 :UInt32;                    # GroupInfo.id
  owner @2 :UInt64 = 1;                # the owner cookie
}

struct ClaimDeviceStep {
  groups @0 :Text = "groups";
  device @1 :Text;                     # a BDF, "ssss:bb:dd.f" or "bb:dd.f"
  owner @2 :UInt64 = 1;
}

struct OwnershipStep {
  ownership @0 :Text;                  # a saved ownership ("$o")
}

struct AttachStep {
  ownership @0 :Text;
  domain @1 :Text;                     # a saved domain ("$d")
}

struct PasidStep {
  ownership @0 :Text;
  pasid @1 :UInt32;
  domain @2 :Text;                     # a saved domain
}

struct DetachPasidStep {
  ownership @0 :Text;
  pasid @1 :UInt32;
}

struct AttachDeviceStep {
  groups @0 :Text = "groups";
  device @1 :Text;
  domain @2 :Text;
}

struct DetachDeviceStep {
  groups @0 :Text = "groups";
  device @1 :Text;
}

struct AllocPagingStep {
  allocator @0 :Text = "domains";      # the domain_allocator instance
  target @1 :DomainAllocator.AllocTarget;
  flags @2 :DomainAllocator.AllocFlags;
}

struct AllocStaticStep {
  allocator @0 :Text = "domains";
}

struct AllocNestedStep {
  allocator @0 :Text = "domains";
  viommu @1 :Text;                     # a saved vIOMMU ("$v")
  vste @2 :List(UInt64);               # the guest's STE dw0, dw1
  vsteFields @3 :SteFields;            # or the same built by its fields (not both)
}

struct SteFields {
  # An STE's dw0 and dw1 by field (facts 2.1), encoded with util/smmuv3's layout: e.g. a guest's
  # stage-1 vSTE (config = s1Trans, s1ContextPtr = 0x2000000, s1CdMax = 0). A field that does
  # not fit its bits, or an unaligned pointer, is an error before anything runs.
  valid @0 :Bool = true;               # V
  config @1 :Config;
  enum Config {
    abort @0;                          # 0b000
    bypass @1;                         # 0b100
    s1Trans @2;                        # 0b101
    s2Trans @3;                        # 0b110
    nested @4;                         # 0b111
  }
  s1Fmt @2 :UInt8;                     # 0 linear, 1 4K leaves, 2 64K leaves
  s1ContextPtr @3 :UInt64;             # 64-byte aligned
  s1CdMax @4 :UInt8;
  s1Dss @5 :UInt8;                     # 0 terminate, 1 bypass, 2 SSID 0
  s1Cir @6 :UInt8;
  s1Cor @7 :UInt8;
  s1Csh @8 :UInt8;
  s1Stalld @9 :Bool;
  eats @10 :UInt8;                     # 0 abort, 1 translate, 2 S1 check
  # Stage 2 (dw2, dw3): a host STE of a stage-2 or nested stream. A vSTE leaves them 0.
  s2Vmid @11 :UInt16;
  s2T0sz @12 :UInt8;                   # 64 - input bits
  s2Sl0 @13 :UInt8;
  s2Ir0 @14 :UInt8;
  s2Or0 @15 :UInt8;
  s2Sh0 @16 :UInt8;
  s2Tg @17 :UInt8;                     # 0 4K, 1 64K, 2 16K
  s2Ps @18 :UInt8;                     # output size code (0 32 bits ... 5 48 bits)
  s2Aa64 @19 :Bool;
  s2Endi @20 :Bool;
  s2Affd @21 :Bool;
  s2Ptw @22 :Bool;
  s2Hd @23 :Bool;
  s2Ha @24 :Bool;
  s2S @25 :Bool;
  s2R @26 :Bool;
  s2Ttb @27 :UInt64;                   # 16-byte aligned
}

struct CdFields {
  # A context descriptor by field (facts 2.2), encoded with util/smmuv3's layout; 64 bytes with
  # MAIR in dw3. A field that does not fit, or an unaligned TTB0, is an error before anything runs.
  valid @0 :Bool = true;               # V
  t0sz @1 :UInt8;                      # 64 - input bits
  tg0 @2 :UInt8;                       # 0 4K, 1 64K, 2 16K
  irgn0 @3 :UInt8;
  orgn0 @4 :UInt8;
  sh0 @5 :UInt8;
  epd0 @6 :Bool;
  epd1 @7 :Bool = true;
  endi @8 :Bool;
  ips @9 :UInt8;                       # output size code
  affd @10 :Bool;
  tbi0 @11 :Bool;
  aa64 @12 :Bool = true;
  hd @13 :Bool;
  ha @14 :Bool;
  s @15 :Bool;
  r @16 :Bool;
  a @17 :Bool = true;
  aset @18 :Bool;
  asid @19 :UInt16;
  ttb0 @20 :UInt64;                    # 16-byte aligned
  mair @21 :UInt64;
}

# ---- Nesting (stage2_shadow and system/guest's guest driver)

struct ShadowStep {
  # Stage2Shadow.shadow: a nest-parent stage-2 domain mirroring the VM's memslots, kept coherent
  # on their changes. saveAs keeps the Shadow (dropping it stops the shadowing): its `domain`
  # method gives the domain to hand to allocViommu.
  stage2 @0 :Text = "shadow";          # the stage2_shadow instance
  vm @1 :Text = "vm0";                 # the hw/vm instance (or a saved Vm, "$vm")
  target @2 :DomainAllocator.AllocTarget;  # where the vIOMMU will be: (smmu = "smmu0")
}

struct GuestAttachStep {
  # A guest driver (system/guest/guest-driver.h) takes its passed-through device: it builds its
  # stage-1 table (the page-table engine in guest-physical space) and a linear CD table in its
  # own memory, writes its vSTE, and the VMM turns the vSTE into a nested domain over the
  # vIOMMU (allocNested) and attaches it with its ownership of the device. Later guestMap and
  # guestUnmap steps name the guest. Results: GuestStepResult (errno of the first refusal).
  guest @0 :Text = "guest0";           # the guest driver's name in this scenario
  vm @1 :Text = "vm0";                 # the hw/vm instance whose memory the guest owns
  viommu @2 :Text;                     # a saved vIOMMU ("$v")
  allocator @3 :Text = "domains";      # the domain_allocator instance
  ownership @4 :Text;                  # a saved Ownership of the device ("$o", claimDevice)
  region :group {
    # The guest's own memory for its structures: page tables, the CD table (its first page),
    # a VCMDQ ring on the sw_vcmdq path. Whole pages inside one writable memslot.
    gpa @5 :UInt64;
    size @6 :UInt64 = 0x100000;
  }
  asid @7 :UInt16 = 1;                 # the guest's ASID (its CD)
  vsid @8 :UInt64;                     # the device's vSID, as the guest knows it
}

struct GuestMapStep {
  # The guest maps [iova, iova + size) to guest-physical `gpa` in its stage-1 table: plain
  # stores in guest memory, no call anywhere (a new mapping needs no invalidation).
  guest @0 :Text = "guest0";
  iova @1 :UInt64;
  gpa @2 :UInt64;
  size @3 :UInt64;
  read @4 :Bool = true;
  write @5 :Bool = true;
}

struct GuestUnmapStep {
  # The guest unmaps and, unless `invalidate` is false, invalidates what its table says must be
  # (TLBI_NH_VA by its ASID, CMD_SYNC) as one batch on the vIOMMU's guest path.
  guest @0 :Text = "guest0";
  iova @1 :UInt64;
  size @2 :UInt64;
  invalidate @3 :Bool = true;
}

struct GuestStepResult {
  # What a guest step reports.
  errno @0 :Common.Errno;      # guestMap/guestUnmap: the page table's (eExist, eNoEnt, eInval,
                               # eRange, eNoMem), then the guest path's (GuestResult); guestAttach:
                               # allocNested's, then Ownership.attach's
  message @1 :Text;
  bytes @2 :UInt64;            # guestMap/guestUnmap: bytes mapped or unmapped
  entryNum @3 :UInt32;         # guestUnmap: invalidation commands the guest path handled
  vste @4 :List(UInt64);       # guestAttach: the guest's STE dw0, dw1
  cdTable @5 :UInt64;          # guestAttach: the CD table's GPA
}

struct Call {
  target @0 :Text;
  # An instance name from the manifest ("page_table"), or a saved capability ("$domain").

  method @1 :Text;
  # Method name of the target's interface ("map").

  args @2 :Text = "()";
  # The method's parameters as a Cap'n Proto struct literal: "(iova = 0x1000, size = 4096)".
  # `$name` is replaced by a saved value, `$i` by a repeat counter.

  capArgs @3 :List(CapArg);
  # Capability-typed parameters, which text cannot express: field name and saved capability.

  result @4 :Text;
  # Dotted path selecting part of the results for `saveAs` and `expect.value`, e.g. "total" or
  # "domain". Empty: the whole results struct.
}

struct CapArg {
  field @0 :Text;   # parameter field name
  value @1 :Text;   # "$name" of a saved capability
}

struct Repeat {
  count @0 :UInt32;
  counter @1 :Text = "i";   # the counter's name: `$i`
  start @2 :UInt64 = 0;     # first value of the counter
  stride @3 :UInt64 = 1;    # added each iteration (e.g. 4096 to step through pages)
  steps @4 :List(Step);
}

struct Expect {
  outcome :union {
    success @0 :Void;
    # The call returns; if its results carry an `errno` (at the top or at `result`), it is `ok`.

    errno @1 :Common.Errno;
    # The results' `errno` field equals this (Linux errno meanings, see common.capnp).

    exception @2 :Text;
    # The call throws; its description contains this text.
    any @7 :Void;
    # Whatever happens — an errno, a fault, an abort, an exception — the step passes (its
    # other expectations are still checked). Without it, an outcome the step does not expect
    # fails it: an exception, an errno other than ok, or results reporting a `fault` or an
    # `aborted` transaction that `fault` (or a `fields` path through it) does not name.
  }

  value @3 :Text;
  # The selected result, printed as Cap'n Proto text, equals this (e.g. "42", "(a = 1)").

  fields @4 :List(FieldCheck);
  # Individual fields of the results (dotted paths from the results root), as text.

  fault @5 :FaultCheck;
  # The results carry a `fault` (an SMMU event record) of this type, with these fields.

  counters @6 :List(CounterCheck);
  # Component counters after the step.

  struct FieldCheck {
    path @0 :Text;     # "runs.0.bytes", "fault.sid"
    equals @1 :Text;   # Cap'n Proto text of the expected value
  }

  struct FaultCheck {
    type @0 :Text;                 # enumerant name of the event type, e.g. "fTranslation"
    fields @1 :List(FieldCheck);   # paths relative to the fault
  }

  struct CounterCheck {
    instance @0 :Text;   # manifest instance name ("memory" for hw/mem's own)
    counter @1 :Text;
    union {
      equals @2 :UInt64;
      atLeast @3 :UInt64;
      atMost @4 :UInt64;
    }
  }
}

# ======================================================================================
# Reports (what `nestbed run` prints, and `--json` encodes)

struct StepReport {
  line @0 :UInt32;        # scenario file line of the step
  label @1 :Text;
  ok @2 :Bool;
  micros @3 :Float64;     # wall time (total over iterations for a repeat)
  iterations @4 :UInt32;  # 1, or the repeat count
  failures @5 :List(Failure);
  depth @6 :UInt8;        # nesting level (steps inside a repeat are 1)
  modeledNs @7 :UInt64;   # modeled time of the modeled machine (total over iterations): the
                          # same on every run and placement (system/runtime/modeled-time.h)
  modeled @8 :List(CostShare);
  # What the modeled time went to, by cost class (nonzero classes only). Classes of the CPU's
  # timeline sum, with "wait" (the CPU waiting for an SMMU to reach a CMD_SYNC), to modeledNs;
  # smmu_cmd_* classes are the SMMU's own timeline, shown for what drove the wait.
  deltas @9 :List(CounterDelta);
  # Every counter of every instance the step changed (a repeat: its steps', summed over
  # iterations), in start order: what this step cost, without boot or the steps before it.
  records @10 :List(Record);
  # What `record` and `print` put into the report (one per iteration inside a repeat).

  struct CounterDelta {
    instance @0 :Text;    # manifest instance name ("memory" for hw/mem's own)
    counter @1 :Text;
    delta @2 :Int64;      # after the step minus before it
  }
  struct Record {
    name @0 :Text;        # `record`'s name; empty for `print`
    value @1 :Text;       # Cap'n Proto text, addresses and registers in hex
    iteration @2 :UInt32; # within a repeat
  }
  struct Failure {
    what @0 :Text;        # "errno", "value", "fields.total", "counter page_table.maps", ...
    expected @1 :Text;
    actual @2 :Text;
    iteration @3 :UInt32; # within a repeat
  }
}

struct CostShare {
  cost @0 :Text;          # a cost-profile key ("walk_read", "smmu_cmd_sync", ...) or "wait"
  units @1 :UInt64;       # how many (bytes / 4096 rounded up for copy_4k)
  ns @2 :UInt64;
}

struct ScenarioReport {
  file @0 :Text;
  description @1 :Text;
  ok @2 :Bool;
  steps @3 :List(StepReport);
  profile @4 :Text;       # the cost profile the modeled times come from
  modeledNs @5 :UInt64;   # the whole scenario's modeled time
}

struct KillStep {
  instance @0 :Text;                   # a process-placed instance, e.g. "smmu_queue"
  signal @1 :UInt8 = 9;                # 9 (SIGKILL), 15 (SIGTERM), 11 (SIGSEGV) or 6 (SIGABRT)
}
