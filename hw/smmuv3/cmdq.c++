// hw/smmuv3: CMDQ consumption and command execution (facts 1.1-1.6).

#include "hw/smmuv3/cmdq.h"

namespace nb::smmu {

namespace {

constexpr unsigned CMD_BYTES = 16;  // facts 1.1

uint64_t normalizeVa(uint64_t va) {
  // TLBI VAs match with the top byte ignored: sign-extend from bit 55, as IOTLB keys are.
  return uint64_t(int64_t(va << 8) >> 8);
}

IotlbScope scopeFor(const Command& c, Regime regime, uint8_t kinds) {
  IotlbScope s;
  s.regime = regime;
  s.kinds = kinds;
  if (regime == Regime::NS_EL1) s.vmid = c.vmid;
  return s;
}

void setRange(IotlbScope& s, const Command& c, uint64_t addr) {
  // Facts 1.4: TG != 0 covers (NUM+1) x 2^SCALE x granule bytes from ADDR, and TTL (when
  // nonzero) names the leaf level. TG = 0 is a single address (NUM, SCALE and TTL are RES0
  // then: the decoder refused them). A TTL that does not match an entry's level leaves the
  // entry (the hint is trusted).
  s.ranged = true;
  s.addr = addr;
  s.length = c.rangeLength();
  s.ttl = c.tg != 0 ? c.ttl : 0;
}

constexpr uint8_t S1_KINDS = uint8_t(TranslationKind::S1_ONLY) | uint8_t(TranslationKind::NESTED);
constexpr uint8_t ALL_KINDS = S1_KINDS | uint8_t(TranslationKind::S2_ONLY);

}  // namespace

void CommandQueue::consume() {
  if (consuming) return;
  consuming = true;
  KJ_DEFER(consuming = false);

  RegisterState& s = regs.state();
  // The queue's geometry cannot change while CMDQEN is set (CMDQ_BASE is read-only then), and
  // CMDQEN is checked every iteration; only a completion signal can run software in between,
  // so it is decoded again after each CMD_SYNC.
  QueueConfig q = regs.cmdq();
  while (regs.cmdqEnabled() && (regs.gerrorActive() & GERROR::CMDQ_ERR.mask()) == 0) {
    const uint32_t cons = q.indexAndWrap(s.cmdqCons);
    if (q.empty(s.cmdqProd, cons)) break;

    const uint64_t addr = q.base + uint64_t(q.index(cons)) * CMD_BYTES;
    uint64_t dw0, dw1;
    KJ_IF_MAYBE(v, mem.tryLoad64(addr)) {
      dw0 = *v;
    } else {
      fail(cons, CommandError::ABT);
      break;
    }
    KJ_IF_MAYBE(v, mem.tryLoad64(addr + 8)) {
      dw1 = *v;
    } else {
      fail(cons, CommandError::ABT);
      break;
    }

    auto decoded = decodeCommand(dw0, dw1, features);
    KJ_IF_MAYBE(error, decoded.tryGet<CommandError>()) {
      fail(cons, *error);
      break;
    }
    const Command& command = decoded.get<Command>();
    // CONS passes the command before any completion signal, so a callback sees it consumed.
    s.cmdqCons = q.next(cons);
    execute(command);
    if (command.op == Opcode::SYNC) q = regs.cmdq();
  }
}

void CommandQueue::fail(uint32_t cons, CommandError error) {
  // Facts 1.6: stop at the failing entry (CONS points at it), report the error in
  // CMDQ_CONS.ERR and raise GERROR.CMDQ_ERR.
  if (error == CommandError::ILL) counters.illegal++;
  if (error == CommandError::ABT) counters.fetchAborts++;
  regs.state().cmdqCons = uint32_t(CMDQ_CONS::ERR.set(cons, uint8_t(error)));
  regs.raiseGlobalError(GERROR::CMDQ_ERR);
}

void CommandQueue::acknowledged() {
  RegisterState& s = regs.state();
  s.cmdqCons = uint32_t(CMDQ_CONS::ERR.set(s.cmdqCons, 0));
  consume();
}

void CommandQueue::execute(const Command& c) {
  counters.consumed++;
  counters.byOpcode[uint8_t(c.op)]++;
  switch (c.op) {
    case Opcode::PREFETCH_CONFIG:
    case Opcode::PREFETCH_ADDR:
      // Prefetching is a hint; the model fetches on demand.
      return;
    case Opcode::CFGI_STE:
      counters.configInvalidated += configs.invalidateSte(c.sid);
      return;
    case Opcode::CFGI_STE_RANGE:
      counters.configInvalidated += configs.invalidateSteRange(c.sid, c.range);
      return;
    case Opcode::CFGI_CD:
      counters.configInvalidated += configs.invalidateCd(c.sid, c.ssid);
      return;
    case Opcode::CFGI_CD_ALL:
      counters.configInvalidated += configs.invalidateCdAll(c.sid);
      return;

    case Opcode::TLBI_NH_ALL: {
      // Stage-1 information of one VMID: S1-only and combined nested entries.
      counters.tlbInvalidated += iotlb.invalidate(scopeFor(c, Regime::NS_EL1, S1_KINDS));
      return;
    }
    case Opcode::TLBI_NH_ASID: {
      IotlbScope s = scopeFor(c, Regime::NS_EL1, S1_KINDS);
      s.asidMatch = IotlbScope::Asid::NON_GLOBAL;
      s.asid = c.asid;
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_NH_VA: {
      IotlbScope s = scopeFor(c, Regime::NS_EL1, S1_KINDS);
      s.asidMatch = IotlbScope::Asid::MATCH_OR_GLOBAL;
      s.asid = c.asid;
      setRange(s, c, normalizeVa(c.addr));
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_NH_VAA: {
      IotlbScope s = scopeFor(c, Regime::NS_EL1, S1_KINDS);
      setRange(s, c, normalizeVa(c.addr));
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_EL2_ALL:
      counters.tlbInvalidated += iotlb.invalidate(scopeFor(c, Regime::EL2, S1_KINDS));
      return;
    case Opcode::TLBI_EL2_ASID: {
      IotlbScope s = scopeFor(c, Regime::EL2, S1_KINDS);
      s.asidMatch = IotlbScope::Asid::NON_GLOBAL;
      s.asid = c.asid;
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_EL2_VA: {
      IotlbScope s = scopeFor(c, Regime::EL2, S1_KINDS);
      s.asidMatch = IotlbScope::Asid::MATCH_OR_GLOBAL;
      s.asid = c.asid;
      setRange(s, c, normalizeVa(c.addr));
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_EL2_VAA: {
      IotlbScope s = scopeFor(c, Regime::EL2, S1_KINDS);
      setRange(s, c, normalizeVa(c.addr));
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::TLBI_S12_VMALL:
      counters.tlbInvalidated += iotlb.invalidate(scopeFor(c, Regime::NS_EL1, ALL_KINDS));
      return;
    case Opcode::TLBI_S2_IPA: {
      // Architecturally only stage-2 information for the IPA range goes. A combined nested
      // entry folds S2 information in without remembering which IPAs (tables and output) it
      // depended on, so every nested entry of the VMID goes too: conservative, never stale.
      IotlbScope s = scopeFor(c, Regime::NS_EL1, uint8_t(TranslationKind::S2_ONLY));
      setRange(s, c, c.addr);
      counters.tlbInvalidated += iotlb.invalidate(s);
      counters.tlbInvalidated += iotlb.invalidate(
          scopeFor(c, Regime::NS_EL1, uint8_t(TranslationKind::NESTED)));
      return;
    }
    case Opcode::TLBI_NSNH_ALL: {
      IotlbScope s;
      s.regime = Regime::NS_EL1;
      s.kinds = ALL_KINDS;
      counters.tlbInvalidated += iotlb.invalidate(s);
      return;
    }
    case Opcode::ATC_INV:
      // No ATS device keeps an ATC in this model: nothing to invalidate.
      return;
    case Opcode::SYNC:
      completeSync(c);
      return;
    case Opcode::CFGI_VMS_PIDM:
    case Opcode::TLBI_EL3_ALL:
    case Opcode::TLBI_EL3_VA:
    case Opcode::PRI_RESP:
    case Opcode::RESUME:
    case Opcode::STALL_TERM:
      return;  // never decoded: CERROR_ILL
  }
  KJ_UNREACHABLE;
}

void CommandQueue::completeSync(const Command& c) {
  // Facts 1.5: everything before the SYNC has completed (the model is synchronous). CS=SEV
  // needs no action; CS=IRQ writes MSIDATA (32 bits) to MSIADDR when MSIs are in use, then
  // signals. A write outside memory is GERROR.MSI_CMDQ_ABT_ERR (facts 1.7).
  if (c.cs != cmd::SYNC_CS_IRQ) return;
  if (features.msi && c.msiAddr != 0) {
    const uint64_t word = alignDown(c.msiAddr, 8);
    const unsigned shift = unsigned(c.msiAddr - word) * 8;
    if (!mem.contains(word, 8)) {
      regs.raiseGlobalError(GERROR::MSI_CMDQ_ABT_ERR);
      return;
    }
    // A single-copy-atomic 32-bit write into the containing qword.
    uint64_t old = mem.load64(word);
    uint64_t updated;
    do {
      updated = (old & ~(uint64_t(0xffffffff) << shift)) | (uint64_t(c.msiData) << shift);
    } while (!mem.compareExchange64(word, old, updated));
    counters.msiWrites++;
  }
  regs.signal(Irq::CMD_SYNC);
}

}  // namespace nb::smmu
