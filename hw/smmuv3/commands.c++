// hw/smmuv3: command layouts per opcode and the decoder (facts 1.2, 1.3, 1.4, 1.6).

#include "hw/smmuv3/commands.h"

namespace nb::smmu {

namespace {

using namespace cmd;

enum class Needs : uint8_t {
  // The one ID-register feature an opcode needs (IHI 0070 §4.1.3: a command for a feature the
  // SMMU does not implement is CERROR_ILL). One rule per feature, applied to every opcode.
  NOTHING,
  STAGE1,       // IDR0.S1P: CFGI_CD*, TLBI_NH_* (stage-1 structures and TLB entries)
  STAGE2,       // IDR0.S2P: TLBI_S12_VMALL, TLBI_S2_IPA
  HYP,          // IDR0.HYP (which needs S1P): TLBI_EL2_*
  ATS,          // IDR0.ATS: ATC_INV
  PRI,          // IDR0.PRI: PRI_RESP (never implemented here)
  STALL,        // IDR0.STALL_MODEL != 0b01: RESUME, STALL_TERM (never: no stall model)
  UNSUPPORTED,  // EL3 (no Secure state) and CFGI_VMS_PIDM (no VMS)
};

enum class Ssid : uint8_t {
  // How an opcode's SubstreamID fields exist (IHI 0070 §4.1.3, §4.3, §4.5): SSV/SSID (and
  // ATC_INV's Global) are RES0 when IDR1.SSIDSIZE = 0.
  NONE,
  SSV_SSID,     // SSV + SSID (+ Global for ATC_INV)
  SSID_ONLY,    // CFGI_CD: an SSID, no SSV
};

struct Layout {
  // The fields one opcode defines; every other bit is reserved (CERROR_ILL when set).
  Opcode op;
  const char* name;
  uint64_t dw0;       // besides OP and the SubstreamID fields
  uint64_t dw1;
  bool ranged;        // NUM/SCALE (dw0) and TTL/TG (dw1) exist with IDR3.RIL
  Needs needs;
  Ssid ssid = Ssid::NONE;
  bool asid = false;  // has an ASID (its bits [15:8] are RES0 without IDR0.ASID16)
  bool vmid = false;  // has a VMID (its bits [15:8] are RES0 without IDR0.VMID16)
};

constexpr uint64_t m(Field f) { return f.mask(); }

constexpr uint64_t TLBI_RANGE_0 = m(TLBI_0_NUM) | m(TLBI_0_SCALE);
constexpr uint64_t TLBI_RANGE_1 = m(TLBI_1_TTL) | m(TLBI_1_TG);

constexpr Layout LAYOUTS[] = {
  // IHI 0070 §4.2 (prefetch), §4.3 (configuration invalidation), §4.4 (TLB invalidation),
  // §4.5 (ATS), §4.6 (PRI), §4.7 (stall), §4.8 (SYNC); positions are facts 1.3.
  {Opcode::PREFETCH_CONFIG, "PREFETCH_CONFIG", m(PREFETCH_0_SID), 0, false, Needs::NOTHING,
   Ssid::SSV_SSID},
  {Opcode::PREFETCH_ADDR, "PREFETCH_ADDR", m(PREFETCH_0_SID),
   m(PREFETCH_1_SIZE) | m(PREFETCH_1_ADDR), false, Needs::NOTHING, Ssid::SSV_SSID},
  {Opcode::CFGI_STE, "CFGI_STE", m(CFGI_0_SID), m(CFGI_1_LEAF), false, Needs::NOTHING},
  {Opcode::CFGI_STE_RANGE, "CFGI_STE_RANGE", m(CFGI_0_SID), m(CFGI_1_RANGE), false,
   Needs::NOTHING},
  {Opcode::CFGI_CD, "CFGI_CD", m(CFGI_0_SID), m(CFGI_1_LEAF), false, Needs::STAGE1,
   Ssid::SSID_ONLY},
  {Opcode::CFGI_CD_ALL, "CFGI_CD_ALL", m(CFGI_0_SID), 0, false, Needs::STAGE1},
  {Opcode::CFGI_VMS_PIDM, "CFGI_VMS_PIDM", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_NH_ALL, "TLBI_NH_ALL", m(TLBI_0_VMID), 0, false, Needs::STAGE1, Ssid::NONE,
   false, true},
  {Opcode::TLBI_NH_ASID, "TLBI_NH_ASID", m(TLBI_0_VMID) | m(TLBI_0_ASID), 0, false,
   Needs::STAGE1, Ssid::NONE, true, true},
  {Opcode::TLBI_NH_VA, "TLBI_NH_VA", m(TLBI_0_VMID) | m(TLBI_0_ASID),
   m(TLBI_1_LEAF) | m(TLBI_1_VA), true, Needs::STAGE1, Ssid::NONE, true, true},
  {Opcode::TLBI_NH_VAA, "TLBI_NH_VAA", m(TLBI_0_VMID), m(TLBI_1_LEAF) | m(TLBI_1_VA), true,
   Needs::STAGE1, Ssid::NONE, false, true},
  {Opcode::TLBI_EL3_ALL, "TLBI_EL3_ALL", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_EL3_VA, "TLBI_EL3_VA", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_EL2_ALL, "TLBI_EL2_ALL", 0, 0, false, Needs::HYP},
  {Opcode::TLBI_EL2_ASID, "TLBI_EL2_ASID", m(TLBI_0_ASID), 0, false, Needs::HYP, Ssid::NONE,
   true},
  {Opcode::TLBI_EL2_VA, "TLBI_EL2_VA", m(TLBI_0_ASID), m(TLBI_1_LEAF) | m(TLBI_1_VA), true,
   Needs::HYP, Ssid::NONE, true},
  {Opcode::TLBI_EL2_VAA, "TLBI_EL2_VAA", 0, m(TLBI_1_LEAF) | m(TLBI_1_VA), true, Needs::HYP},
  {Opcode::TLBI_S12_VMALL, "TLBI_S12_VMALL", m(TLBI_0_VMID), 0, false, Needs::STAGE2,
   Ssid::NONE, false, true},
  {Opcode::TLBI_S2_IPA, "TLBI_S2_IPA", m(TLBI_0_VMID), m(TLBI_1_LEAF) | m(TLBI_1_IPA), true,
   Needs::STAGE2, Ssid::NONE, false, true},
  {Opcode::TLBI_NSNH_ALL, "TLBI_NSNH_ALL", 0, 0, false, Needs::NOTHING},
  {Opcode::ATC_INV, "ATC_INV", m(ATC_0_SID), m(ATC_1_SIZE) | m(ATC_1_ADDR), false, Needs::ATS,
   Ssid::SSV_SSID},
  {Opcode::PRI_RESP, "PRI_RESP", m(PRI_0_SID), m(PRI_1_GRPID) | m(PRI_1_RESP), false,
   Needs::PRI, Ssid::SSV_SSID},
  // IDR0.STALL_MODEL = 0b01 (no stall): RESUME and STALL_TERM are CERROR_ILL (IHI 0070 §4.7).
  {Opcode::RESUME, "RESUME", m(RESUME_0_RESP) | m(RESUME_0_SID), m(RESUME_1_STAG), false,
   Needs::STALL},
  {Opcode::STALL_TERM, "STALL_TERM", m(RESUME_0_SID), 0, false, Needs::STALL},
  {Opcode::SYNC, "SYNC", m(SYNC_0_CS) | m(SYNC_0_MSH) | m(SYNC_0_MSIATTR) | m(SYNC_0_MSIDATA),
   m(SYNC_1_MSIADDR), false, Needs::NOTHING},
};

// Every opcode byte's layout (null: not a command), so a decode is one indexed load.
struct LayoutIndex {
  const Layout* byOpcode[256] = {};
  constexpr LayoutIndex() {
    for (auto& l : LAYOUTS) byOpcode[uint8_t(l.op)] = &l;
  }
};
constexpr LayoutIndex LAYOUT_INDEX;

const Layout* findLayout(uint8_t opcode) { return LAYOUT_INDEX.byOpcode[opcode]; }

bool available(Needs needs, const Features& f) {
  switch (needs) {
    case Needs::NOTHING: return true;
    case Needs::STAGE1: return f.stage1;
    case Needs::STAGE2: return f.stage2;
    case Needs::HYP: return f.hyp && f.stage1;
    case Needs::ATS: return f.ats;
    case Needs::PRI: return false;    // IDR0.PRI = 0: no PRI queue is modelled
    case Needs::STALL: return false;  // IDR0.STALL_MODEL = 0b01: no transaction stalls
    case Needs::UNSUPPORTED: return false;
  }
  return false;
}

}  // namespace

kj::StringPtr opcodeName(uint8_t opcode) {
  const Layout* l = findLayout(opcode);
  return l == nullptr ? kj::StringPtr("UNKNOWN") : kj::StringPtr(l->name);
}

uint64_t Command::rangeLength() const {
  if (tg == 0) return 0;
  // Facts 1.3 TG: 1 = 4K, 2 = 16K, 3 = 64K; facts 1.4 step 6.
  const unsigned granuleShift = 12 + 2 * (tg - 1);
  return (uint64_t(num) + 1) << (scale + granuleShift);
}

kj::OneOf<Command, CommandError> decodeCommand(uint64_t dw0, uint64_t dw1, const Features& f) {
  const uint8_t opcode = uint8_t(CMD_0_OP.get(dw0));
  const Layout* layout = findLayout(opcode);
  if (layout == nullptr || !available(layout->needs, f)) return CommandError::ILL;
  uint64_t allowed0 = m(CMD_0_OP) | layout->dw0;
  uint64_t allowed1 = layout->dw1;
  if (layout->ranged && f.ril) {
    allowed0 |= TLBI_RANGE_0;
    allowed1 |= TLBI_RANGE_1;
  }
  if (f.ssidBits > 0) {
    if (layout->ssid == Ssid::SSV_SSID) {
      allowed0 |= m(CMD_0_SSV) | m(CFGI_0_SSID);  // SSID is dw0[31:12] in every command
      if (layout->op == Opcode::ATC_INV) allowed0 |= m(ATC_0_GLOBAL);
    } else if (layout->ssid == Ssid::SSID_ONLY) {
      allowed0 |= m(CFGI_0_SSID);
    }
  }
  // ASID[15:8] / VMID[15:8] are RES0 without IDR0.ASID16 / IDR0.VMID16.
  if (layout->asid && !f.asid16) allowed0 &= ~(uint64_t(0xff00) << TLBI_0_ASID.lo);
  if (layout->vmid && !f.vmid16) allowed0 &= ~(uint64_t(0xff00) << TLBI_0_VMID.lo);
  if ((dw0 & ~allowed0) != 0 || (dw1 & ~allowed1) != 0) return CommandError::ILL;

  if (layout->ranged && f.ril) {
    // IHI 0070 §4.4.1 (range invalidation and TTL): with TG = 0 the command is not a range
    // and NUM, SCALE and TTL are RES0; with TG != 0, TTL = 0 together with NUM = SCALE = 0 is
    // a reserved encoding, and TTL = 0b01 (level 1) with the 16K granule needs IDR5.DS (no
    // 52-bit 16K addressing is modelled).
    const uint64_t tg = TLBI_1_TG.get(dw1), ttl = TLBI_1_TTL.get(dw1);
    const bool numOrScale = (dw0 & TLBI_RANGE_0) != 0;
    if (tg == 0 && (numOrScale || ttl != 0)) return CommandError::ILL;
    if (tg != 0 && !numOrScale && ttl == 0) return CommandError::ILL;
    if (tg == TLBI_TG_16K && ttl == 1) return CommandError::ILL;
  }
  if (layout->op == Opcode::ATC_INV && ATC_1_SIZE.get(dw1) > ATC_INV_SIZE_ALL) {
    return CommandError::ILL;  // SIZE above 52 is reserved (IHI 0070 §4.5.1)
  }

  Command c;
  c.op = Opcode(opcode);
  switch (c.op) {
    case Opcode::PREFETCH_CONFIG:
    case Opcode::PREFETCH_ADDR:
      c.ssv = CMD_0_SSV.test(dw0);
      c.ssid = uint32_t(PREFETCH_0_SSID.get(dw0));
      c.sid = uint32_t(PREFETCH_0_SID.get(dw0));
      c.size = uint8_t(PREFETCH_1_SIZE.get(dw1));
      c.addr = PREFETCH_1_ADDR.get(dw1) << PREFETCH_1_ADDR.lo;
      break;
    case Opcode::CFGI_STE:
    case Opcode::CFGI_STE_RANGE:
    case Opcode::CFGI_CD:
    case Opcode::CFGI_CD_ALL:
      c.ssv = CMD_0_SSV.test(dw0);
      c.ssid = uint32_t(CFGI_0_SSID.get(dw0));
      c.sid = uint32_t(CFGI_0_SID.get(dw0));
      c.leaf = CFGI_1_LEAF.test(dw1);
      c.range = c.op == Opcode::CFGI_STE_RANGE ? uint8_t(CFGI_1_RANGE.get(dw1)) : 0;
      break;
    case Opcode::TLBI_NH_ALL:
    case Opcode::TLBI_NH_ASID:
    case Opcode::TLBI_NH_VA:
    case Opcode::TLBI_NH_VAA:
    case Opcode::TLBI_EL2_ALL:
    case Opcode::TLBI_EL2_ASID:
    case Opcode::TLBI_EL2_VA:
    case Opcode::TLBI_EL2_VAA:
    case Opcode::TLBI_S12_VMALL:
    case Opcode::TLBI_S2_IPA:
    case Opcode::TLBI_NSNH_ALL:
      // VMID/ASID bits above the implemented width are ignored.
      c.vmid = uint16_t(TLBI_0_VMID.get(dw0) & f.vmidMask());
      c.asid = uint16_t(TLBI_0_ASID.get(dw0) & f.asidMask());
      c.num = uint8_t(TLBI_0_NUM.get(dw0));
      c.scale = uint8_t(TLBI_0_SCALE.get(dw0));
      c.leaf = TLBI_1_LEAF.test(dw1);
      c.ttl = uint8_t(TLBI_1_TTL.get(dw1));
      c.tg = uint8_t(TLBI_1_TG.get(dw1));
      c.addr = c.op == Opcode::TLBI_S2_IPA ? TLBI_1_IPA.get(dw1) << TLBI_1_IPA.lo
                                           : TLBI_1_VA.get(dw1) << TLBI_1_VA.lo;
      break;
    case Opcode::ATC_INV:
      c.ssv = CMD_0_SSV.test(dw0);
      c.ssid = uint32_t(ATC_0_SSID.get(dw0));
      c.sid = uint32_t(ATC_0_SID.get(dw0));
      c.size = uint8_t(ATC_1_SIZE.get(dw1));
      c.addr = ATC_1_ADDR.get(dw1) << ATC_1_ADDR.lo;
      break;
    case Opcode::SYNC:
      c.cs = uint8_t(SYNC_0_CS.get(dw0));
      if (c.cs == 3) return CommandError::ILL;  // reserved completion signal
      c.msiData = uint32_t(SYNC_0_MSIDATA.get(dw0));
      c.msiAddr = SYNC_1_MSIADDR.get(dw1) << SYNC_1_MSIADDR.lo;
      break;
    case Opcode::CFGI_VMS_PIDM:
    case Opcode::TLBI_EL3_ALL:
    case Opcode::TLBI_EL3_VA:
    case Opcode::PRI_RESP:
    case Opcode::RESUME:
    case Opcode::STALL_TERM:
      return CommandError::ILL;  // rejected above; kept for exhaustiveness
  }
  return c;
}

}  // namespace nb::smmu
