@0xa8e639d2eb8bc888;
# The SMMUv3 hardware model (hw/smmuv3) as software and devices reach it.
#
# Design stance: two faces, as on a real machine. Software programs the SMMU through its MMIO
# register file at the architected offsets (Mmio) and through structures it writes into shared
# physical memory (stream table, CDs, page tables, queues) — those never cross RPC. Devices
# present transactions (translate). Expected hardware outcomes — a fault with its event record,
# a transaction terminated by GBPA or an abort STE — are data in results, never exceptions;
# an exception means a broken contract (e.g. an SSID wider than 20 bits) or a dead peer.
# Capability-based: no SMMU names another component; whoever holds the capability uses it.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

# ======================================================================================
# The programming interface

struct MmioAccess {
  # One register access of a batch.
  offset @0 :UInt32;   # byte offset in the 128 KiB frame; page 1 registers at 0x10000 + x
  size @1 :UInt8 = 4;  # bytes: 4 or 8 (other sizes read as zero and write nothing)
  write @2 :Bool;      # false: read
  value @3 :UInt64;    # the value written (writes only)
}

interface Mmio {
  # The SMMU's register file. Unknown or misaligned offsets read as zero; writes to read-only or
  # reserved fields and unknown offsets are ignored, as the architecture says. The model is
  # synchronous: when a write returns, its effects (CR0ACK, commands consumed, CMD_SYNC
  # completion) have happened.

  read @0 (offset :UInt32, size :UInt8 = 4) -> (value :UInt64);
  # A 32-bit (size 4) or 64-bit (size 8) read. Example: (offset = 0x0) reads IDR0.

  write @1 (offset :UInt32, value :UInt64, size :UInt8 = 4) -> ();
  # A 32-bit or 64-bit write. Example: (offset = 0x20, value = 1) sets CR0.SMMUEN.

  batch @2 (accesses :List(MmioAccess)) -> (values :List(UInt64));
  # Performs the accesses in order in one call; `values[i]` is what access i read (0 for
  # writes). E.g. publish commands with a CMDQ_PROD write and read CMDQ_CONS back.
}

# ======================================================================================
# Events

enum EventType {
  # Event IDs (IHI 0070 via facts 3.1). Each enumerant is the spec mnemonic in camelCase:
  # split at '_', lower-case the first word, capitalise only the first letter of the others
  # (C_BAD_STREAMID -> cBadStreamid). The scenario runner's `expect.fault.type` compares these.
  unknown @0;            # an ID the architecture does not define
  fUut @1;               # 0x01 unsupported upstream transaction
  cBadStreamid @2;       # 0x02 SID beyond the stream table, or an invalid L1 descriptor
  fSteFetch @3;          # 0x03 external abort fetching an STE
  cBadSte @4;            # 0x04 STE invalid (V = 0) or illegal
  fBadAtsTreq @5;        # 0x05
  fStreamDisabled @6;    # 0x06 non-substream traffic with S1DSS = TERMINATE
  fTranslForbidden @7;   # 0x07
  cBadSubstreamid @8;    # 0x08 SSID above S1CDMax, or an SSID without a CD table
  fCdFetch @9;           # 0x09 external abort fetching a CD
  cBadCd @10;            # 0x0a CD invalid or illegal
  fWalkEabt @11;         # 0x0b external abort during a table walk
  fTranslation @12;      # 0x10 invalid descriptor
  fAddrSize @13;         # 0x11 address-size fault
  fAccess @14;           # 0x12 access-flag fault
  fPermission @15;       # 0x13 permission fault
  fTlbConflict @16;      # 0x20
  fCfgConflict @17;      # 0x21
  ePageRequest @18;      # 0x24
  fVmsFetch @19;         # 0x25
}

enum FaultClass {
  # Event CLASS (facts 3.2): which access the faulting walk was for.
  cd @0;         # fetching a CD (nested: the stage-2 walk of the CD's IPA)
  tt @1;         # fetching a stage-1 table (nested: the stage-2 walk of a descriptor's IPA)
  in @2;         # translating the transaction's input address
  reserved @3;
}

struct Fault {
  # An event the SMMU raised, decoded from its 32-byte record (facts 3.2). Fields an event type
  # does not carry are zero (facts 3.2 "Fields each event carries"); `raw` is authoritative.
  type @0 :EventType;
  id @1 :UInt8;            # the raw event ID, dw0[7:0]
  sid @2 :UInt32;          # StreamID
  ssv @3 :Bool;            # the transaction had a SubstreamID
  ssid @4 :UInt32;         # SubstreamID (valid when ssv)
  inputAddr @5 :UInt64;    # the transaction's input address (IOVA), dw2
  ipa @6 :UInt64;          # stage-2 faults: the IPA being translated, bits [51:12] as recorded
  s2 @7 :Bool;             # the fault came from stage 2
  class @8 :FaultClass;
  rnw @9 :Bool;            # 1 = read
  ind @10 :Bool;           # 1 = instruction fetch
  pnu @11 :Bool;           # 1 = privileged
  ttrnw @12 :Bool;         # F_PERMISSION during an HTTU update: the table access (0 = write)
  stall @13 :Bool;
  stag @14 :UInt16;
  fetchAddr @15 :UInt64;   # fetch faults (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT): bits [51:3]
  raw @16 :List(UInt64);   # the record itself: 4 little-endian qwords
}

# ======================================================================================
# The device side

struct Transaction {
  # One untranslated transaction from a device.
  sid @0 :UInt32;          # StreamID
  union {
    noSsid @1 :Void;       # no SubstreamID (default)
    ssid @2 :UInt32;       # SubstreamID (PCIe PASID), below 2^20
  }
  iova @3 :UInt64;         # input address
  write @4 :Bool;          # false: read
  priv @5 :Bool;           # privileged
  exec @6 :Bool;           # instruction fetch (reads only)
}

enum AbortCause {
  gbpa @0;   # SMMUEN = 0 and GBPA.ABORT = 1: terminated, no event
  ste @1;    # STE.Config = abort: terminated, no event
}

struct TranslateResult {
  union {
    ok :group {
      pa @0 :UInt64;        # output physical address
      leafSize @1 :UInt64;  # bytes of the naturally aligned region around `pa` translated alike
    }
    fault @2 :Fault;        # terminated with this event (also in the EVTQ when recordable)
    aborted @3 :AbortCause; # terminated silently
    razWi @4 :Fault;        # terminated as RAZ/WI (IDR0.TERM_MODEL = 0 and CD.A = 0, IHI 0070
                            # §3.12.2): the device sees success, reads return zero, writes are
                            # ignored; the event is in the EVTQ when recordable (CD.R)
  }
}

# ======================================================================================
# The SMMU

enum Httu {
  none @0;
  access @1;        # access flag only
  accessDirty @2;   # access flag and dirty state (DBM)
}

struct SmmuFeatures {
  # What the instance implements: its manifest settings, advertised in IDR0..IDR5.
  stage1 @0 :Bool;
  stage2 @1 :Bool;
  nesting @2 :Bool;              # stage1 && stage2
  ril @3 :Bool;                  # range invalidation
  httu @4 :Httu;
  ats @5 :Bool;
  hyp @6 :Bool;
  sidBits @7 :UInt8;
  ssidBits @8 :UInt8;
  oas @9 :UInt8;                 # output address bits
  gran4k @10 :Bool;
  gran16k @11 :Bool;
  gran64k @12 :Bool;
  asid16 @13 :Bool;
  vmid16 @14 :Bool;
  twoLevelStreamTable @15 :Bool;
  cd2l @16 :Bool;
  cmdqLog2Max @17 :UInt8;
  evtqLog2Max @18 :UInt8;
  attrTypesOvr @19 :Bool;
  msi @20 :Bool;
  sev @21 :Bool;
  iotlbEntries @22 :UInt32;      # 0 = no IOTLB
  configCacheEntries @23 :UInt32;
}

struct SmmuInfo {
  name @0 :Text;                 # the manifest instance name, e.g. "smmu0": tells SMMUs apart
  idr @1 :List(UInt32);          # IDR0..IDR5 as read at offsets 0x00..0x14
  iidr @2 :UInt32;
  aidr @3 :UInt32;
  features @4 :SmmuFeatures;
  mmioSize @5 :UInt32;           # bytes of the register frame (128 KiB: pages 0 and 1)
}

enum SmmuIrq {
  evtq @0;      # an event was written to the EVTQ (IRQ_CTRL.EVTQ_IRQEN)
  gerror @1;    # a GERROR bit became active (IRQ_CTRL.GERROR_IRQEN)
  cmdSync @2;   # a CMD_SYNC with CS = IRQ completed
}

interface IrqSink {
  interrupt @0 (irq :SmmuIrq) -> ();
  # One interrupt. While a call to a sink is in flight, further interrupts of a kind already
  # pending are merged into one, as a wired interrupt line would (no unbounded queue).
}

interface Subscription {
  # Held by the subscriber: dropping the last reference unsubscribes.
}

interface Smmuv3 extends(Mmio) {
  # One SMMU instance: its registers (inherited from Mmio), its device side, and its interrupts.

  mmio @0 () -> (mmio :Mmio);
  # A capability to the register file alone, to hand to whoever programs this SMMU.

  translate @1 Transaction -> TranslateResult;
  # Translates one transaction, exactly as a device's transaction would be: IOTLB, STE, CD,
  # walks; faults are recorded in the EVTQ when the architecture says so.
  # Example: (sid = 3, iova = 0x10000, write = true).

  translateBatch @2 (transactions :List(Transaction)) -> (results :List(TranslateResult));
  # Translates in order and stops after the first transaction that does not translate (a fault
  # or an abort): `results` then ends with that one. One call per DMA burst, not per page.

  info @3 () -> (info :SmmuInfo);

  subscribe @4 (sink :IrqSink) -> (subscription :Subscription);
  # Delivers this SMMU's interrupts to `sink` until `subscription` is dropped.
  reset @5 () -> ();
  # A reset of the device (IHI 0070 §6.3: every register to its reset value): CR0/CR0ACK,
  # IRQ_CTRL/IRQ_CTRL_ACK, GERROR/GERRORN and CMDQ_CONS.ERR to 0, GBPA to bypass with incoming
  # shareability; registers whose reset value the architecture leaves UNKNOWN (CR1, CR2, the
  # queue and stream-table bases, PROD/CONS, the IRQ_CFG registers) read as 0. The queues are
  # emptied (PROD = CONS = 0) and the STE/CD cache and IOTLB hold nothing. ID registers, memory
  # and interrupt subscriptions are unchanged; counters keep counting.
}
