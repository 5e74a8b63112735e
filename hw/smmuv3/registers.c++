// hw/smmuv3: the register file — one table row per register, one handler per row.
//
// 64-bit registers accept 64-bit accesses and 32-bit accesses to either half (a half write
// merges into the current value and then goes through the register's handler). A 64-bit access
// to a pair of 32-bit registers is CONSTRAINED UNPREDICTABLE (IHI 0070, register access rules);
// this model splits it into two 32-bit accesses, low word first.

#include "hw/smmuv3/registers.h"
#include <kj/debug.h>

namespace nb::smmu {

namespace {

uint64_t addressMask(Field addr, uint8_t oas) {
  // An address field limited to the implemented OAS: higher bits are RES0 and ignored.
  return addr.mask() & ((uint64_t(1) << oas) - 1);
}

constexpr uint32_t GBPA_FIELDS = uint32_t(GBPA::MEMATTR.mask() | GBPA::MTCFG.mask() |
                                          GBPA::ALLOCCFG.mask() | GBPA::SHCFG.mask() |
                                          GBPA::PRIVCFG.mask() | GBPA::INSTCFG.mask() |
                                          GBPA::ABORT.mask());
constexpr uint32_t GBPA_RESET = uint32_t(GBPA::SHCFG.with(0, 1));  // IHI 0070 SMMU_GBPA: bypass,
                                                                   // incoming shareability
constexpr uint32_t IRQ_CFG2_FIELDS = uint32_t(IRQ_CFG2::MEMATTR.mask() | IRQ_CFG2::SH.mask());

}  // namespace

QueueConfig decodeQueueBase(uint64_t qbase, uint8_t log2Max, unsigned entryBytes, uint8_t oas) {
  uint8_t log2Size = kj::min(uint8_t(Q_BASE::LOG2SIZE.get(qbase)), log2Max);
  uint64_t bytes = kj::max(uint64_t(entryBytes) << log2Size, uint64_t(32));
  uint64_t addr = qbase & addressMask(Q_BASE::ADDR, oas);
  return QueueConfig{alignDown(addr, bytes), log2Size};
}

struct RegisterFile::Register {
  uint32_t offset;
  uint8_t bytes;
  const char* name;
  uint64_t (*read)(const RegisterFile&);
  void (*write)(RegisterFile&, uint64_t);  // nullptr: read-only, writes ignored
};

// Sorted by offset. Writable-field masks come from the layouts in registers.h.
const RegisterFile::Register RegisterFile::REGISTERS[] = {
  {IDR0::OFFSET, 4, "IDR0", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[0]; },
   nullptr},
  {IDR1::OFFSET, 4, "IDR1", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[1]; },
   nullptr},
  {IDR2::OFFSET, 4, "IDR2", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[2]; },
   nullptr},
  {IDR3::OFFSET, 4, "IDR3", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[3]; },
   nullptr},
  {IDR4::OFFSET, 4, "IDR4", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[4]; },
   nullptr},
  {IDR5::OFFSET, 4, "IDR5", [](const RegisterFile& r) -> uint64_t { return r.idRegs.idr[5]; },
   nullptr},
  {IIDR::OFFSET, 4, "IIDR", [](const RegisterFile& r) -> uint64_t { return r.idRegs.iidr; },
   nullptr},
  {AIDR::OFFSET, 4, "AIDR", [](const RegisterFile& r) -> uint64_t { return r.idRegs.aidr; },
   nullptr},
  {CR0::OFFSET, 4, "CR0", [](const RegisterFile& r) -> uint64_t { return r.s.cr0; },
   [](RegisterFile& r, uint64_t v) { r.writeCr0(v); }},
  {CR0ACK::OFFSET, 4, "CR0ACK", [](const RegisterFile& r) -> uint64_t { return r.s.cr0; },
   nullptr},
  {CR1::OFFSET, 4, "CR1", [](const RegisterFile& r) -> uint64_t { return r.s.cr1; },
   [](RegisterFile& r, uint64_t v) {
     r.s.cr1 = uint32_t(v & (CR1::QUEUE_IC.mask() | CR1::QUEUE_OC.mask() | CR1::QUEUE_SH.mask() |
                             CR1::TABLE_IC.mask() | CR1::TABLE_OC.mask() | CR1::TABLE_SH.mask()));
   }},
  {CR2::OFFSET, 4, "CR2", [](const RegisterFile& r) -> uint64_t { return r.s.cr2; },
   [](RegisterFile& r, uint64_t v) {
     uint64_t mask = CR2::RECINVSID.mask() | CR2::PTM.mask();
     if (r.features.hyp) mask |= CR2::E2H.mask();  // E2H is RES0 without IDR0.HYP
     r.s.cr2 = uint32_t(v & mask);
   }},
  {GBPA::OFFSET, 4, "GBPA", [](const RegisterFile& r) -> uint64_t { return r.s.gbpa; },
   [](RegisterFile& r, uint64_t v) { r.writeGbpa(v); }},
  {IRQ_CTRL::OFFSET, 4, "IRQ_CTRL", [](const RegisterFile& r) -> uint64_t { return r.s.irqCtrl; },
   [](RegisterFile& r, uint64_t v) {
     // PRIQ_IRQEN is RES0: no PRI queue.
     r.s.irqCtrl = uint32_t(v & (IRQ_CTRL::GERROR_IRQEN.mask() | IRQ_CTRL::EVTQ_IRQEN.mask()));
   }},
  {IRQ_CTRL_ACK::OFFSET, 4, "IRQ_CTRL_ACK",
   [](const RegisterFile& r) -> uint64_t { return r.s.irqCtrl; }, nullptr},
  {GERROR::OFFSET, 4, "GERROR", [](const RegisterFile& r) -> uint64_t { return r.s.gerror; },
   nullptr},
  {GERRORN::OFFSET, 4, "GERRORN", [](const RegisterFile& r) -> uint64_t { return r.s.gerrorn; },
   [](RegisterFile& r, uint64_t v) { r.writeGerrorn(v); }},
  {GERROR_IRQ_CFG0::OFFSET, 8, "GERROR_IRQ_CFG0",
   [](const RegisterFile& r) -> uint64_t { return r.s.gerrorIrqCfg0; },
   [](RegisterFile& r, uint64_t v) {
     if (r.features.msi) r.s.gerrorIrqCfg0 = v & addressMask(IRQ_CFG0::ADDR, r.features.oas);
   }},
  {GERROR_IRQ_CFG1::OFFSET, 4, "GERROR_IRQ_CFG1",
   [](const RegisterFile& r) -> uint64_t { return r.s.gerrorIrqCfg1; },
   [](RegisterFile& r, uint64_t v) { if (r.features.msi) r.s.gerrorIrqCfg1 = uint32_t(v); }},
  {GERROR_IRQ_CFG2::OFFSET, 4, "GERROR_IRQ_CFG2",
   [](const RegisterFile& r) -> uint64_t { return r.s.gerrorIrqCfg2; },
   [](RegisterFile& r, uint64_t v) {
     if (r.features.msi) r.s.gerrorIrqCfg2 = uint32_t(v & IRQ_CFG2_FIELDS);
   }},
  {STRTAB_BASE::OFFSET, 8, "STRTAB_BASE",
   [](const RegisterFile& r) -> uint64_t { return r.s.strtabBase; },
   [](RegisterFile& r, uint64_t v) {
     if (r.smmuEnabled()) return;  // RO while SMMUEN (IHI 0070 SMMU_STRTAB_BASE)
     r.s.strtabBase = v & (addressMask(STRTAB_BASE::ADDR, r.features.oas) | STRTAB_BASE::RA.mask());
   }},
  {STRTAB_BASE_CFG::OFFSET, 4, "STRTAB_BASE_CFG",
   [](const RegisterFile& r) -> uint64_t { return r.s.strtabBaseCfg; },
   [](RegisterFile& r, uint64_t v) {
     if (r.smmuEnabled()) return;
     uint64_t mask = STRTAB_BASE_CFG::LOG2SIZE.mask() | STRTAB_BASE_CFG::SPLIT.mask();
     // FMT is RES0 (reads as linear) without two-level support.
     if (r.features.twoLevelStreamTable) mask |= STRTAB_BASE_CFG::FMT.mask();
     r.s.strtabBaseCfg = uint32_t(v & mask);
   }},
  {CMDQ_BASE::OFFSET, 8, "CMDQ_BASE",
   [](const RegisterFile& r) -> uint64_t { return r.s.cmdqBase; },
   [](RegisterFile& r, uint64_t v) {
     if (r.cmdqEnabled()) return;  // RO while CMDQEN
     r.s.cmdqBase = v & (addressMask(Q_BASE::ADDR, r.features.oas) | Q_BASE::RA.mask() |
                         Q_BASE::LOG2SIZE.mask());
   }},
  {CMDQ_PROD::OFFSET, 4, "CMDQ_PROD",
   [](const RegisterFile& r) -> uint64_t { return r.s.cmdqProd; },
   [](RegisterFile& r, uint64_t v) {
     r.s.cmdqProd = uint32_t(v & Q_PTR::WR_RD.mask());
     r.hooks.cmdqProdWritten();
   }},
  {CMDQ_CONS::OFFSET, 4, "CMDQ_CONS",
   [](const RegisterFile& r) -> uint64_t { return r.s.cmdqCons; },
   [](RegisterFile& r, uint64_t v) {
     if (r.cmdqEnabled()) return;  // software sets CONS only while the queue is disabled
     r.s.cmdqCons = uint32_t(v & Q_PTR::WR_RD.mask());
   }},
  {EVTQ_BASE::OFFSET, 8, "EVTQ_BASE",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqBase; },
   [](RegisterFile& r, uint64_t v) {
     if (r.evtqEnabled()) return;  // RO while EVTQEN
     r.s.evtqBase = v & (addressMask(Q_BASE::ADDR, r.features.oas) | Q_BASE::RA.mask() |
                         Q_BASE::LOG2SIZE.mask());
   }},
  {EVTQ_IRQ_CFG0::OFFSET, 8, "EVTQ_IRQ_CFG0",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqIrqCfg0; },
   [](RegisterFile& r, uint64_t v) {
     if (r.features.msi) r.s.evtqIrqCfg0 = v & addressMask(IRQ_CFG0::ADDR, r.features.oas);
   }},
  {EVTQ_IRQ_CFG1::OFFSET, 4, "EVTQ_IRQ_CFG1",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqIrqCfg1; },
   [](RegisterFile& r, uint64_t v) { if (r.features.msi) r.s.evtqIrqCfg1 = uint32_t(v); }},
  {EVTQ_IRQ_CFG2::OFFSET, 4, "EVTQ_IRQ_CFG2",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqIrqCfg2; },
   [](RegisterFile& r, uint64_t v) {
     if (r.features.msi) r.s.evtqIrqCfg2 = uint32_t(v & IRQ_CFG2_FIELDS);
   }},
  {EVTQ_PROD::OFFSET, 4, "EVTQ_PROD",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqProd; },
   [](RegisterFile& r, uint64_t v) {
     if (r.evtqEnabled()) return;  // the SMMU owns PROD while the queue is enabled
     r.s.evtqProd = uint32_t(v & (Q_PTR::WR_RD.mask() | Q_PTR::OVFLG.mask()));
   }},
  {EVTQ_CONS::OFFSET, 4, "EVTQ_CONS",
   [](const RegisterFile& r) -> uint64_t { return r.s.evtqCons; },
   [](RegisterFile& r, uint64_t v) {
     r.s.evtqCons = uint32_t(v & (Q_PTR::WR_RD.mask() | Q_PTR::OVFLG.mask()));
   }},
};

RegisterFile::RegisterFile(const Features& features, RegisterHooks& hooks,
                           kj::Function<void(Irq)>& irq)
    : features(features), hooks(hooks), irq(irq), idRegs(makeIdRegisters(features)) {
  s.gbpa = GBPA_RESET;
}

void RegisterFile::reset() {
  s = RegisterState();
  s.gbpa = GBPA_RESET;
}

const RegisterFile::Register* RegisterFile::find(uint32_t offset) {
  for (auto& r : REGISTERS) {
    if (r.offset == offset) return &r;
    if (r.offset > offset) break;
  }
  return nullptr;
}

uint64_t RegisterFile::read(uint32_t offset, unsigned size) const {
  if ((size != 4 && size != 8) || offset % size != 0) return 0;
  if (const Register* r = find(offset)) {
    uint64_t v = r->read(*this);
    if (size == 4) return uint32_t(v);     // a 32-bit register, or a 64-bit one's low half
    if (r->bytes == 8) return v;
  } else if (size == 4) {
    const Register* r = offset >= 4 ? find(offset - 4) : nullptr;
    return r != nullptr && r->bytes == 8 ? r->read(*this) >> 32 : 0;
  }
  // A 64-bit access to 32-bit registers: two 32-bit reads.
  return read(offset, 4) | (read(offset + 4, 4) << 32);
}

void RegisterFile::write(uint32_t offset, uint64_t value, unsigned size) {
  if ((size != 4 && size != 8) || offset % size != 0) return;
  if (const Register* r = find(offset)) {
    if (size == 8 && r->bytes == 4) {
      write(offset, uint32_t(value), 4);
      write(offset + 4, value >> 32, 4);
      return;
    }
    if (r->write == nullptr) return;
    if (size == 4 && r->bytes == 8) {
      value = (r->read(*this) & ~uint64_t(0xffffffff)) | uint32_t(value);
    } else if (size == 4) {
      value = uint32_t(value);
    }
    r->write(*this, value);
  } else if (size == 4 && offset >= 4) {
    const Register* r = find(offset - 4);
    if (r != nullptr && r->bytes == 8 && r->write != nullptr) {
      r->write(*this, (r->read(*this) & 0xffffffff) | (value << 32));
    }
  } else if (size == 8) {
    write(offset, uint32_t(value), 4);
    write(offset + 4, value >> 32, 4);
  }
}

void RegisterFile::writeCr0(uint64_t value) {
  uint64_t mask = CR0::SMMUEN.mask() | CR0::EVTQEN.mask() | CR0::CMDQEN.mask();
  if (features.ats) mask |= CR0::ATSCHK.mask();  // PRIQEN is RES0: no PRI queue
  uint32_t previous = s.cr0;
  s.cr0 = uint32_t(value & mask);
  hooks.cr0Written(previous);
}

void RegisterFile::writeGbpa(uint64_t value) {
  // Facts 1.8: software writes the new fields with UPDATE=1 and waits for UPDATE to clear.
  // The update completes synchronously, so UPDATE never reads as 1. A write with UPDATE=0
  // changes nothing (IHI 0070 SMMU_GBPA).
  if (!GBPA::UPDATE.test(value)) return;
  s.gbpa = uint32_t(value & GBPA_FIELDS);
}

void RegisterFile::writeGerrorn(uint64_t value) {
  uint32_t before = gerrorActive();
  s.gerrorn = uint32_t(value & GERROR::MASK);
  uint32_t acked = before & ~gerrorActive();
  if (acked != 0) hooks.gerrorAcknowledged(acked);
}

QueueConfig RegisterFile::cmdq() const {
  return decodeQueueBase(s.cmdqBase, features.cmdqLog2Max, 16, features.oas);  // facts 1.1
}

QueueConfig RegisterFile::evtq() const {
  return decodeQueueBase(s.evtqBase, features.evtqLog2Max, 32, features.oas);  // facts 1.1
}

bool RegisterFile::raiseGlobalError(Field error) {
  uint32_t m = uint32_t(error.mask());
  if ((gerrorActive() & m) != 0) return false;
  s.gerror ^= m;
  signal(Irq::GERROR);
  return true;
}

void RegisterFile::signal(Irq kind) {
  switch (kind) {
    case Irq::EVTQ:
      if (IRQ_CTRL::EVTQ_IRQEN.test(s.irqCtrl)) irq(kind);
      return;
    case Irq::GERROR:
      if (IRQ_CTRL::GERROR_IRQEN.test(s.irqCtrl)) irq(kind);
      return;
    case Irq::CMD_SYNC:
      irq(kind);
      return;
  }
  KJ_UNREACHABLE;
}

}  // namespace nb::smmu
