// hw/smmuv3: command layouts per opcode and the decoder (facts 1.2, 1.3, 1.4, 1.6).

#include "hw/smmuv3/commands.h"

namespace nb::smmu {

namespace {

using namespace cmd;

enum class Needs : uint8_t { NOTHING, STAGE1, STAGE2, HYP, ATS, UNSUPPORTED };

struct Layout {
  // The fields one opcode defines; every other bit is reserved (CERROR_ILL when set).
  Opcode op;
  const char* name;
  uint64_t dw0;       // besides OP
  uint64_t dw1;
  bool ranged;        // NUM/SCALE (dw0) and TTL/TG (dw1) exist with IDR3.RIL
  Needs needs;
};

constexpr uint64_t m(Field f) { return f.mask(); }

constexpr uint64_t TLBI_RANGE_0 = m(TLBI_0_NUM) | m(TLBI_0_SCALE);
constexpr uint64_t TLBI_RANGE_1 = m(TLBI_1_TTL) | m(TLBI_1_TG);

constexpr Layout LAYOUTS[] = {
  {Opcode::PREFETCH_CONFIG, "PREFETCH_CONFIG",
   m(CMD_0_SSV) | m(PREFETCH_0_SSID) | m(PREFETCH_0_SID), 0, false, Needs::NOTHING},
  {Opcode::PREFETCH_ADDR, "PREFETCH_ADDR", m(CMD_0_SSV) | m(PREFETCH_0_SSID) | m(PREFETCH_0_SID),
   m(PREFETCH_1_SIZE) | m(PREFETCH_1_ADDR), false, Needs::NOTHING},
  {Opcode::CFGI_STE, "CFGI_STE", m(CFGI_0_SID), m(CFGI_1_LEAF), false, Needs::NOTHING},
  {Opcode::CFGI_STE_RANGE, "CFGI_STE_RANGE", m(CFGI_0_SID), m(CFGI_1_RANGE), false,
   Needs::NOTHING},
  {Opcode::CFGI_CD, "CFGI_CD", m(CMD_0_SSV) | m(CFGI_0_SSID) | m(CFGI_0_SID), m(CFGI_1_LEAF),
   false, Needs::NOTHING},
  {Opcode::CFGI_CD_ALL, "CFGI_CD_ALL", m(CFGI_0_SID), 0, false, Needs::NOTHING},
  {Opcode::CFGI_VMS_PIDM, "CFGI_VMS_PIDM", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_NH_ALL, "TLBI_NH_ALL", m(TLBI_0_VMID), 0, false, Needs::STAGE1},
  {Opcode::TLBI_NH_ASID, "TLBI_NH_ASID", m(TLBI_0_VMID) | m(TLBI_0_ASID), 0, false,
   Needs::STAGE1},
  {Opcode::TLBI_NH_VA, "TLBI_NH_VA", m(TLBI_0_VMID) | m(TLBI_0_ASID),
   m(TLBI_1_LEAF) | m(TLBI_1_VA), true, Needs::STAGE1},
  {Opcode::TLBI_NH_VAA, "TLBI_NH_VAA", m(TLBI_0_VMID), m(TLBI_1_LEAF) | m(TLBI_1_VA), true,
   Needs::STAGE1},
  {Opcode::TLBI_EL3_ALL, "TLBI_EL3_ALL", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_EL3_VA, "TLBI_EL3_VA", 0, 0, false, Needs::UNSUPPORTED},
  {Opcode::TLBI_EL2_ALL, "TLBI_EL2_ALL", 0, 0, false, Needs::HYP},
  {Opcode::TLBI_EL2_ASID, "TLBI_EL2_ASID", m(TLBI_0_ASID), 0, false, Needs::HYP},
  {Opcode::TLBI_EL2_VA, "TLBI_EL2_VA", m(TLBI_0_ASID), m(TLBI_1_LEAF) | m(TLBI_1_VA), true,
   Needs::HYP},
  {Opcode::TLBI_EL2_VAA, "TLBI_EL2_VAA", 0, m(TLBI_1_LEAF) | m(TLBI_1_VA), true, Needs::HYP},
  {Opcode::TLBI_S12_VMALL, "TLBI_S12_VMALL", m(TLBI_0_VMID), 0, false, Needs::NOTHING},
  {Opcode::TLBI_S2_IPA, "TLBI_S2_IPA", m(TLBI_0_VMID), m(TLBI_1_LEAF) | m(TLBI_1_IPA), true,
   Needs::STAGE2},
  {Opcode::TLBI_NSNH_ALL, "TLBI_NSNH_ALL", 0, 0, false, Needs::NOTHING},
  {Opcode::ATC_INV, "ATC_INV", m(ATC_0_GLOBAL) | m(CMD_0_SSV) | m(ATC_0_SSID) | m(ATC_0_SID),
   m(ATC_1_SIZE) | m(ATC_1_ADDR), false, Needs::ATS},
  {Opcode::PRI_RESP, "PRI_RESP", m(CMD_0_SSV) | m(PRI_0_SSID) | m(PRI_0_SID),
   m(PRI_1_GRPID) | m(PRI_1_RESP), false, Needs::UNSUPPORTED},
  // No transaction ever stalls (IDR0.STALL_MODEL = no stall): RESUME and STALL_TERM are
  // accepted and have nothing to act on.
  {Opcode::RESUME, "RESUME", m(RESUME_0_RESP) | m(RESUME_0_SID), m(RESUME_1_STAG), false,
   Needs::NOTHING},
  {Opcode::STALL_TERM, "STALL_TERM", m(RESUME_0_SID), 0, false, Needs::NOTHING},
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
    case Needs::HYP: return f.hyp;
    case Needs::ATS: return f.ats;
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
  if ((dw0 & ~allowed0) != 0 || (dw1 & ~allowed1) != 0) return CommandError::ILL;

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
    case Opcode::RESUME:
    case Opcode::STALL_TERM:
      c.sid = uint32_t(RESUME_0_SID.get(dw0));
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
      return CommandError::ILL;  // rejected above; kept for exhaustiveness
  }
  return c;
}

}  // namespace nb::smmu
