// hw/smmuv3: the SMMUv3 programming interface — the register file.
//
// Owns: the register file's state, and software's 32/64-bit MMIO access to it through a table of
// registers with one handler each. Side effects that belong to other modules (consuming the
// command queue, resuming after an error) are requested through `RegisterHooks`.
// Does not own: queue processing (cmdq.h, evtq.h) or translation (smmuv3.h).
//
// References to IHI 0070 (the SMMUv3 architecture) and DDI0487 (the Arm ARM) in this directory
// mark facts that are not in /work/shared/reference/smmuv3-iommu-facts.md (its section 9 lists
// the specification as a gap); they are from knowledge of the architecture, to be checked
// against the specification.
//
// Synchronous model: every write takes effect before the MMIO write returns, so CR0ACK mirrors
// CR0 at once, GBPA.UPDATE reads back as 0 and IRQ_CTRL_ACK mirrors IRQ_CTRL.

#pragma once

#include "hw/smmuv3/features.h"
#include <kj/function.h>
#include "util/bits.h"
#include "util/smmuv3/registers.h"
#include <cstdint>

namespace nb::smmu {

using nb::bit;
using nb::bits;
using nb::Field;

// Register layouts: util/smmuv3/registers.h (shared with the driver side, facts 1.7 and 1.8).
using namespace nb::smmuv3;

// =============================================================================================
// Queue geometry (facts 1.1)

struct QueueConfig {
  // A queue base register decoded once.
  uint64_t base;      // physical address of entry 0 (aligned to the queue size)
  uint8_t log2Size;   // log2 of the number of entries, capped at the implemented maximum

  uint32_t entries() const { return uint32_t(1) << log2Size; }
  uint32_t index(uint32_t ptr) const { return ptr & (entries() - 1); }
  uint32_t wrap(uint32_t ptr) const { return (ptr >> log2Size) & 1; }
  uint32_t indexAndWrap(uint32_t ptr) const { return ptr & ((entries() << 1) - 1); }
  bool empty(uint32_t prod, uint32_t cons) const {
    return indexAndWrap(prod) == indexAndWrap(cons);
  }
  bool full(uint32_t prod, uint32_t cons) const {
    return index(prod) == index(cons) && wrap(prod) != wrap(cons);
  }
  uint32_t next(uint32_t ptr) const { return indexAndWrap(indexAndWrap(ptr) + 1); }
  // Advances index+wrap; the caller keeps any flag bits.
};

QueueConfig decodeQueueBase(uint64_t qbase, uint8_t log2Max, unsigned entryBytes, uint8_t oas);
// LOG2SIZE above the maximum behaves as the maximum (IHI 0070 SMMU_CMDQ_BASE); address bits
// below the queue's size (at least 32 bytes) and above the OAS are treated as zero (CONSTRAINED
// UNPREDICTABLE choice: the queue is naturally aligned).

// =============================================================================================
// Register file

enum class Irq : uint8_t {
  // What the model signals through its interrupt callback.
  EVTQ,      // an event was written to the EVTQ (IRQ_CTRL.EVTQ_IRQEN)
  GERROR,    // a GERROR bit became active (IRQ_CTRL.GERROR_IRQEN)
  CMD_SYNC,  // a CMD_SYNC with CS=IRQ completed (after its MSI write, when MSIs are used)
};

class RegisterHooks {
  // Side effects of register writes that other modules own.
public:
  virtual void cr0Written(uint32_t previous) = 0;   // e.g. CMDQEN 0->1 starts consumption
  virtual void cmdqProdWritten() = 0;               // consume commands
  virtual void gerrorAcknowledged(uint32_t acked) = 0;  // GERROR bits that became inactive
};

struct RegisterState {
  // The register values as the model sees them. Software reaches them only through
  // RegisterFile::read/write, which apply the access rules.
  uint32_t cr0 = 0;           // CR0ACK mirrors it
  uint32_t cr1 = 0;
  uint32_t cr2 = 0;
  uint32_t gbpa = 0;
  uint32_t irqCtrl = 0;       // IRQ_CTRL_ACK mirrors it
  uint32_t gerror = 0;
  uint32_t gerrorn = 0;
  uint64_t gerrorIrqCfg0 = 0;
  uint32_t gerrorIrqCfg1 = 0;
  uint32_t gerrorIrqCfg2 = 0;
  uint64_t strtabBase = 0;
  uint32_t strtabBaseCfg = 0;
  uint64_t cmdqBase = 0;
  uint32_t cmdqProd = 0;
  uint32_t cmdqCons = 0;      // includes ERR
  uint64_t evtqBase = 0;
  uint32_t evtqProd = 0;      // includes OVFLG
  uint32_t evtqCons = 0;      // includes OVACKFLG
  uint64_t evtqIrqCfg0 = 0;
  uint32_t evtqIrqCfg1 = 0;
  uint32_t evtqIrqCfg2 = 0;
};

class RegisterFile {
public:
  RegisterFile(const Features& features, RegisterHooks& hooks, kj::Function<void(Irq)>& irq);
  KJ_DISALLOW_COPY(RegisterFile);

  // ---- software's view (MMIO) --------------------------------------------------------------
  uint64_t read(uint32_t offset, unsigned size) const;
  // `size` is 4 or 8 bytes. Unknown offsets, misaligned accesses and other sizes read as zero.
  void write(uint32_t offset, uint64_t value, unsigned size);
  // Writes to read-only or reserved fields, unknown offsets and odd sizes are ignored.

  // ---- the model's view --------------------------------------------------------------------
  RegisterState& state() { return s; }
  const RegisterState& state() const { return s; }
  const IdRegisters& ids() const { return idRegs; }

  bool smmuEnabled() const { return CR0::SMMUEN.test(s.cr0); }
  bool cmdqEnabled() const { return CR0::CMDQEN.test(s.cr0); }
  bool evtqEnabled() const { return CR0::EVTQEN.test(s.cr0); }
  uint32_t gerrorActive() const { return (s.gerror ^ s.gerrorn) & GERROR::MASK; }
  QueueConfig cmdq() const;
  QueueConfig evtq() const;

  void reset();
  // Every register to its reset value (IHI 0070 §6.3; UNKNOWN reset values are 0 here).

  bool raiseGlobalError(Field error);
  // Flips the GERROR bit (facts 1.7) unless that error is already active, and signals
  // Irq::GERROR when enabled. Returns whether the error became active.
  void signal(Irq irq);
  // Calls the interrupt callback if the interrupt is enabled (EVTQ, GERROR: IRQ_CTRL;
  // CMD_SYNC: always — its enable is the command's CS field).

private:
  struct Register;
  static const Register REGISTERS[];
  static const Register* find(uint32_t offset);

  // Per-register write handlers (value already positioned as a full register value).
  void writeCr0(uint64_t value);
  void writeGbpa(uint64_t value);
  void writeGerrorn(uint64_t value);

  const Features& features;
  RegisterHooks& hooks;
  kj::Function<void(Irq)>& irq;
  IdRegisters idRegs;
  RegisterState s;
};

}  // namespace nb::smmu
