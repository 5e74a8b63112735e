// hw/smmuv3: one SMMUv3 instance — the model's public face.
//
// Owns: composing the register file, caches, walker, command queue and event queue into an
// SMMU; the translation flow of an incoming transaction (SMMUEN/GBPA, STE, CD, stage 1, stage 2,
// nested) with the IOTLB in front; deciding which faults are recorded in the EVTQ; statistics.
// Does not own: any RPC (the composition wraps this class in a Cap'n Proto capability), the
// physical memory (borrowed), or interrupt delivery (a callback the owner supplies).
//
// Not thread-safe: one instance belongs to one event loop. Everything is synchronous: an MMIO
// write that produces commands has executed them (and any CMD_SYNC completion) on return.

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/cmdq.h"
#include "hw/smmuv3/context-descriptor.h"
#include "hw/smmuv3/events.h"
#include "hw/smmuv3/evtq.h"
#include "hw/smmuv3/features.h"
#include "hw/smmuv3/registers.h"
#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/tlb.h"
#include "hw/smmuv3/walk.h"
#include <kj/function.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace nb::smmu {

struct Transaction {
  // One incoming (untranslated) transaction from a device.
  uint32_t sid = 0;                // StreamID
  kj::Maybe<uint32_t> ssid;        // SubstreamID (PASID), at most 20 bits; null = none
  uint64_t iova = 0;               // input address
  bool write = false;              // false = read
  bool priv = false;               // privileged (PnU = 1)
  bool exec = false;               // instruction fetch (reads only; ignored for writes)
};

struct TranslateOk {
  uint64_t pa;         // output physical address
  uint64_t leafSize;   // bytes of the naturally aligned region around `pa` translated alike
                       // (bypass reports 4096: no larger identity region is promised)
};

enum class AbortCause : uint8_t {
  GBPA_ABORT,   // SMMUEN = 0 and GBPA.ABORT = 1
  STE_ABORT,    // STE.Config = ABORT: terminated without an event
};

struct TranslateAbort {
  AbortCause cause;
};

struct TranslateRazWi {
  // A stage-1 translation fault terminated as RAZ/WI rather than aborted (IHI 0070 §3.12.2:
  // IDR0.TERM_MODEL = 0 and CD.A = 0): the device's read returns zero and its write is
  // ignored. `record` is the event (in the EVTQ when CD.R says so).
  EventRecord record;
};

using TranslateResult = kj::OneOf<TranslateOk, EventRecord, TranslateAbort, TranslateRazWi>;
// ok, or the transaction was terminated with a fault (the event the SMMU raised; it is also in
// the EVTQ when EVTQEN is set and the fault is recordable: CD.R for stage-1 translation faults,
// STE.S2R for stage-2 ones, always for configuration errors and external aborts; C_BAD_STREAMID
// only with CR2.RECINVSID), or terminated as RAZ/WI (with its event), or aborted silently.

struct Stat {
  kj::String name;   // e.g. "iotlb.hits", "cmdq.op.TLBI_NH_VA"
  uint64_t value;
};

class Smmuv3 final : private RegisterHooks {
public:
  Smmuv3(PhysMem& mem, Features features, kj::Function<void(Irq)> irq);
  // `mem` is borrowed for the SMMU's lifetime; `features` are validated (KJ_REQUIRE).
  KJ_DISALLOW_COPY(Smmuv3);
  Smmuv3(Smmuv3&&) = delete;             // KJ 0.9.2 has no KJ_DISALLOW_COPY_AND_MOVE
  Smmuv3& operator=(Smmuv3&&) = delete;

  // implements the programming interface --------------------------------------------------
  uint64_t mmioRead(uint32_t offset, unsigned size);
  // `offset` within the 128 KB MMIO frame (page 1 at 0x10000); `size` 4 or 8. Unknown or
  // misaligned offsets and other sizes read as zero.
  void mmioWrite(uint32_t offset, uint64_t value, unsigned size);
  // Read-only and reserved fields, unknown offsets and other sizes are ignored.

  void reset();
  // A device reset: registers to their reset values (RegisterFile::reset), queues empty, the
  // STE/CD cache and IOTLB emptied. Statistics are kept (they are the model's, not the SMMU's).

  // implements the device side ------------------------------------------------------------
  TranslateResult translate(const Transaction& transaction);

  // implements introspection --------------------------------------------------------------
  kj::Vector<Stat> stats() const;
  const Features& features() const { return features_; }
  const CommandStats& commandStats() const { return cmdq.stats(); }

  // The work the modeled clock charges for (hw/smmuv3/component.c++), cumulative; cheap to read
  // around every access, unlike stats().
  struct Work {
    uint64_t iotlbLookups = 0;
    uint64_t configLookups = 0;   // STE and CD lookups in the configuration cache
    uint64_t configFetches = 0;   // STEs and CDs fetched from memory
    uint64_t walkReads = 0;       // descriptor reads by the walker (nested S2 reads included)
    uint64_t eventsWritten = 0;
  };
  Work work() const;

private:
  // implements RegisterHooks
  void cr0Written(uint32_t previous) override;
  void cmdqProdWritten() override;
  void gerrorAcknowledged(uint32_t acked) override;

  EventRecord fault(const Transaction& t, Event event, bool recordable);
  TranslateResult addressSizeFault(const Transaction& t);
  TranslateResult bypass(const Transaction& t);
  TranslateResult stage1Fault(const Transaction& t, const Event& e, const CdConfig& cd,
                              const SteConfig& ste);
  bool stage1Recordable(const Event& e, const CdConfig& cd, const SteConfig& ste) const;
  bool stage2Recordable(const Event& e, const SteConfig& ste) const;
  const SteConfig* lookupSte(const Transaction& t, kj::Maybe<EventRecord>& failure);
  TranslateResult translateStage2Only(const Transaction& t, const SteConfig& ste);
  TranslateResult translateStage1(const Transaction& t, const SteConfig& ste);

  struct Counters {
    uint64_t transactions = 0;
    uint64_t bypassed = 0;
    uint64_t aborted = 0;
    uint64_t faults = 0;
    uint64_t razWi = 0;
    uint64_t resets = 0;   // faults terminated as RAZ/WI (TERM_MODEL = 0, CD.A = 0)
    uint64_t iotlbHits = 0;
    uint64_t iotlbMisses = 0;
    uint64_t walks = 0;   // IOTLB misses that walked (one per translation, nested or not)
  };

  PhysMem& mem;
  Features features_;
  kj::Function<void(Irq)> irq;
  RegisterFile regs;
  WalkCounters walkCounters;
  Walker walker;
  ConfigCache configs;
  Iotlb iotlb;
  CommandQueue cmdq;
  EventQueue evtq;
  Counters counters;
  SteConfig uncachedSte;   // the current translation's STE/CD when the config cache is off
  CdConfig uncachedCd;
};

}  // namespace nb::smmu
