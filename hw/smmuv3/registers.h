// hw/smmuv3: the SMMUv3 programming interface — register layouts and the register file.
//
// Owns: every register's offset and fields (declared once, facts 1.7 and 1.8; IHI 0070 where
// marked), the register file's state, and software's 32/64-bit MMIO access to it through a table of
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
#include <cstdint>

namespace nb::smmu {

using nb::bit;
using nb::bits;
using nb::Field;

// =============================================================================================
// Register layouts (facts 1.8 unless marked; page 1 registers carry the +0x10000 in OFFSET)

constexpr uint32_t PAGE1 = 0x10000;   // page 1 base (64 KB pages)
constexpr uint32_t MMIO_SIZE = 0x20000;

namespace IDR0 {
constexpr uint32_t OFFSET = 0x00;
constexpr Field S2P = bit(0);
constexpr Field S1P = bit(1);
constexpr Field TTF = bits(3, 2);          // 2 = AArch64 only
constexpr Field COHACC = bit(4);
constexpr Field HTTU = bits(7, 6);         // Httu encoding
constexpr Field HYP = bit(9);
constexpr Field ATS = bit(10);
constexpr Field ASID16 = bit(12);
constexpr Field MSI = bit(13);
constexpr Field SEV = bit(14);
constexpr Field PRI = bit(16);
constexpr Field VMID16 = bit(18);
constexpr Field CD2L = bit(19);
constexpr Field TTENDIAN = bits(22, 21);   // 2 = little-endian only
constexpr Field STALL_MODEL = bits(25, 24);  // 0 stall, 1 no stall (IHI 0070 SMMU_IDR0), 2 force
constexpr Field ST_LVL = bits(28, 27);     // 1 = two-level stream table
constexpr uint64_t TTF_AARCH64 = 2;
constexpr uint64_t TTENDIAN_LE = 2;
constexpr uint64_t STALL_MODEL_NONE = 1;
}  // namespace IDR0

namespace IDR1 {
constexpr uint32_t OFFSET = 0x04;
constexpr Field SIDSIZE = bits(5, 0);
constexpr Field SSIDSIZE = bits(10, 6);
constexpr Field PRIQS = bits(15, 11);
constexpr Field EVTQS = bits(20, 16);
constexpr Field CMDQS = bits(25, 21);
constexpr Field ATTR_TYPES_OVR = bit(27);
constexpr Field REL = bit(28);
constexpr Field QUEUES_PRESET = bit(29);
constexpr Field TABLES_PRESET = bit(30);
}  // namespace IDR1

namespace IDR2 { constexpr uint32_t OFFSET = 0x08; }
namespace IDR3 {
constexpr uint32_t OFFSET = 0x0c;
constexpr Field RIL = bit(10);
}  // namespace IDR3
namespace IDR4 { constexpr uint32_t OFFSET = 0x10; }
namespace IDR5 {
constexpr uint32_t OFFSET = 0x14;
constexpr Field OAS = bits(2, 0);
constexpr Field GRAN4K = bit(4);
constexpr Field GRAN16K = bit(5);
constexpr Field GRAN64K = bit(6);
constexpr Field VAX = bits(11, 10);
constexpr Field STALL_MAX = bits(31, 16);
}  // namespace IDR5
namespace IIDR { constexpr uint32_t OFFSET = 0x18; }
namespace AIDR {
constexpr uint32_t OFFSET = 0x1c;
constexpr Field ARCH_MINOR_REV = bits(3, 0);   // IHI 0070 SMMU_AIDR
constexpr Field ARCH_MAJOR_REV = bits(7, 4);   // 0 = SMMUv3
}  // namespace AIDR

namespace CR0 {
constexpr uint32_t OFFSET = 0x20;
constexpr Field SMMUEN = bit(0);
constexpr Field PRIQEN = bit(1);
constexpr Field EVTQEN = bit(2);
constexpr Field CMDQEN = bit(3);
constexpr Field ATSCHK = bit(4);
}  // namespace CR0
namespace CR0ACK { constexpr uint32_t OFFSET = 0x24; }  // same fields as CR0
namespace CR1 {
constexpr uint32_t OFFSET = 0x28;
constexpr Field QUEUE_IC = bits(1, 0);
constexpr Field QUEUE_OC = bits(3, 2);
constexpr Field QUEUE_SH = bits(5, 4);
constexpr Field TABLE_IC = bits(7, 6);
constexpr Field TABLE_OC = bits(9, 8);
constexpr Field TABLE_SH = bits(11, 10);
}  // namespace CR1
namespace CR2 {
constexpr uint32_t OFFSET = 0x2c;
constexpr Field E2H = bit(0);
constexpr Field RECINVSID = bit(1);
constexpr Field PTM = bit(2);
}  // namespace CR2

namespace GBPA {
constexpr uint32_t OFFSET = 0x44;
// Attribute fields below ABORT are from IHI 0070 SMMU_GBPA; the model stores but does not apply
// them (bypass attributes have no effect on a flat physical memory).
constexpr Field MEMATTR = bits(3, 0);
constexpr Field MTCFG = bit(4);
constexpr Field ALLOCCFG = bits(11, 8);
constexpr Field SHCFG = bits(13, 12);      // reset 0b01 = use incoming
constexpr Field PRIVCFG = bits(17, 16);
constexpr Field INSTCFG = bits(19, 18);
constexpr Field ABORT = bit(20);
constexpr Field UPDATE = bit(31);
}  // namespace GBPA

namespace IRQ_CTRL {
constexpr uint32_t OFFSET = 0x50;
constexpr Field GERROR_IRQEN = bit(0);
constexpr Field PRIQ_IRQEN = bit(1);
constexpr Field EVTQ_IRQEN = bit(2);
}  // namespace IRQ_CTRL
namespace IRQ_CTRL_ACK { constexpr uint32_t OFFSET = 0x54; }

namespace GERROR {
// Facts 1.7: active = GERROR ^ GERRORN; the SMMU flips GERROR, software flips GERRORN.
constexpr uint32_t OFFSET = 0x60;
constexpr Field CMDQ_ERR = bit(0);
constexpr Field EVTQ_ABT_ERR = bit(2);
constexpr Field PRIQ_ABT_ERR = bit(3);
constexpr Field MSI_CMDQ_ABT_ERR = bit(4);
constexpr Field MSI_EVTQ_ABT_ERR = bit(5);
constexpr Field MSI_PRIQ_ABT_ERR = bit(6);
constexpr Field MSI_GERROR_ABT_ERR = bit(7);
constexpr Field SFM_ERR = bit(8);
constexpr uint32_t MASK = 0x1fd;
}  // namespace GERROR
namespace GERRORN { constexpr uint32_t OFFSET = 0x64; }  // same fields as GERROR

// MSI configuration of the GERROR and EVTQ interrupts (IHI 0070 SMMU_GERROR_IRQ_CFGn and
// SMMU_EVTQ_IRQ_CFGn; the Linux header agrees). Stored for software; interrupts are delivered
// through the model's interrupt callback, not as MSI writes.
namespace IRQ_CFG0 { constexpr Field ADDR = bits(51, 2); }
namespace IRQ_CFG2 {
constexpr Field MEMATTR = bits(3, 0);
constexpr Field SH = bits(5, 4);
}  // namespace IRQ_CFG2
namespace GERROR_IRQ_CFG0 { constexpr uint32_t OFFSET = 0x68; }
namespace GERROR_IRQ_CFG1 { constexpr uint32_t OFFSET = 0x70; }
namespace GERROR_IRQ_CFG2 { constexpr uint32_t OFFSET = 0x74; }

namespace STRTAB_BASE {
constexpr uint32_t OFFSET = 0x80;
constexpr Field ADDR = bits(51, 6);
constexpr Field RA = bit(62);
}  // namespace STRTAB_BASE
namespace STRTAB_BASE_CFG {
constexpr uint32_t OFFSET = 0x88;
constexpr Field LOG2SIZE = bits(5, 0);
constexpr Field SPLIT = bits(10, 6);
constexpr Field FMT = bits(17, 16);
constexpr uint64_t FMT_LINEAR = 0;
constexpr uint64_t FMT_2LVL = 1;
}  // namespace STRTAB_BASE_CFG

namespace Q_BASE {
// Common layout of CMDQ_BASE / EVTQ_BASE (facts 1.1).
constexpr Field LOG2SIZE = bits(4, 0);
constexpr Field ADDR = bits(51, 5);
constexpr Field RA = bit(62);
}  // namespace Q_BASE
namespace Q_PTR {
// PROD/CONS: index in the low log2size bits, wrap bit above, overflow flag in bit 31 (facts 1.1).
constexpr Field WR_RD = bits(19, 0);       // index + wrap for the largest queue (2^19 entries)
constexpr Field OVFLG = bit(31);           // EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG
}  // namespace Q_PTR

namespace CMDQ_BASE { constexpr uint32_t OFFSET = 0x90; }
namespace CMDQ_PROD { constexpr uint32_t OFFSET = 0x98; }
namespace CMDQ_CONS {
constexpr uint32_t OFFSET = 0x9c;
constexpr Field ERR = bits(30, 24);        // facts 1.1, 1.6
}  // namespace CMDQ_CONS

namespace EVTQ_BASE { constexpr uint32_t OFFSET = 0xa0; }
namespace EVTQ_PROD { constexpr uint32_t OFFSET = PAGE1 + 0xa8; }
namespace EVTQ_CONS { constexpr uint32_t OFFSET = PAGE1 + 0xac; }
namespace EVTQ_IRQ_CFG0 { constexpr uint32_t OFFSET = 0xb0; }
namespace EVTQ_IRQ_CFG1 { constexpr uint32_t OFFSET = 0xb8; }
namespace EVTQ_IRQ_CFG2 { constexpr uint32_t OFFSET = 0xbc; }

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
