// hw/smmuv3: stream table fetch and STE decode (facts 2.1, 4.4).

#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/registers.h"

namespace nb::smmu {

namespace {

Event badSte() {
  Event e;
  e.id = EventId::C_BAD_STE;
  return e;
}

Event fetchAbort(EventId id, uint64_t addr) {
  Event e;
  e.id = id;
  e.fetchAddr = addr;
  return e;
}

// TxSZ limits without FEAT_TTST / FEAT_LVA (DDI0487 TCR_ELx.TxSZ): 25..48 bits of input, 52
// with the 64K granule when the SMMU has a 52-bit OAS (stage 2 IPA only).
constexpr uint8_t MIN_INPUT_BITS = 25;

kj::Maybe<Granule> decodeS2Tg(uint64_t tg, const Features& f) {
  switch (tg) {
    case ste::S2TG_4K: if (f.gran4k) return Granule::G4K; break;
    case ste::S2TG_64K: if (f.gran64k) return Granule::G64K; break;
    case ste::S2TG_16K: if (f.gran16k) return Granule::G16K; break;
  }
  return nullptr;
}

kj::Maybe<uint8_t> decodeS2StartLevel(Granule g, uint64_t sl0, uint8_t oas) {
  // Facts 4.5: 4K: SL0 2 -> L0, 1 -> L1, 0 -> L2; 16K/64K: 2 -> L1, 1 -> L2, 0 -> L3.
  // SL0 = 3 is reserved for 4K and 64K, and for 16K it means L0, which needs 52-bit 16K
  // addressing (FEAT_LPA2 / IDR5.DS, not modelled). A start level is also illegal when the
  // implemented OAS is too small to need it (DDI0487 stage-2 starting level, the rules facts
  // 4.4 cites as R_DXBSH/R_SRKBC; IHI 0070 §5.2 STE.S2SL0): 4K L0 needs OAS >= 44, 16K L1
  // needs OAS >= 42, 64K L1 needs OAS >= 44.
  if (sl0 == 3) return nullptr;
  const uint8_t level = uint8_t(g == Granule::G4K ? 2 - sl0 : 3 - sl0);
  if (g == Granule::G4K && level == 0 && oas < 44) return nullptr;
  if (g == Granule::G16K && level == 1 && oas < 42) return nullptr;
  if (g == Granule::G64K && level == 1 && oas < 44) return nullptr;
  return level;
}


}  // namespace

bool tableAddressLegal(uint64_t ttb, Granule g, uint8_t outputBits) {
  // IHI 0070 §5.2 STE.S2TTB / §5.4 CD.TTB0/TTB1: a table address beyond the effective output
  // size (IPS/S2PS capped at the OAS) is ILLEGAL, and so is one at or above 2^48 with the 4K or
  // 16K granule (only 64K tables carry PA[51:48]).
  if (outputBits < 64 && (ttb >> outputBits) != 0) return false;
  if (g != Granule::G64K && (ttb >> 48) != 0) return false;
  return true;
}

StreamTableConfig decodeStreamTableConfig(uint64_t strtabBase, uint32_t cfg, const Features& f) {
  StreamTableConfig t;
  t.base = STRTAB_BASE::ADDR.get(strtabBase) << STRTAB_BASE::ADDR.lo;
  t.twoLevel = f.twoLevelStreamTable && STRTAB_BASE_CFG::FMT.get(cfg) == STRTAB_BASE_CFG::FMT_2LVL;
  t.log2Size = uint8_t(kj::min(STRTAB_BASE_CFG::LOG2SIZE.get(cfg), uint64_t(f.sidBits)));
  uint64_t split = STRTAB_BASE_CFG::SPLIT.get(cfg);
  t.split = split >= 10 ? 10 : split >= 8 ? 8 : 6;
  return t;
}

kj::OneOf<Ste, Event> fetchSte(const PhysMem& mem, const StreamTableConfig& table, uint32_t sid) {
  Event badSid;
  badSid.id = EventId::C_BAD_STREAMID;
  if (table.log2Size < 32 && (uint64_t(sid) >> table.log2Size) != 0) return badSid;

  uint64_t addr;
  if (table.twoLevel) {
    // Facts 2.1: L1 index = SID >> SPLIT; the L2 table holds 2^(SPAN-1) STEs.
    uint64_t l1Addr = table.base + (uint64_t(sid) >> table.split) * 8;
    uint64_t l1;
    KJ_IF_MAYBE(v, mem.tryLoad64(l1Addr)) {
      l1 = *v;
    } else {
      return fetchAbort(EventId::F_STE_FETCH, l1Addr);
    }
    uint64_t span = ste::L1STD_SPAN.get(l1);
    // IHI 0070 §3.3.2 (L1STD.SPAN): 0 = invalid descriptor; a SPAN above SPLIT + 1 (which
    // includes the reserved values 12..31, as SPLIT is at most 10) is out of range; both make
    // the stream invalid: C_BAD_STREAMID.
    if (span == 0 || span > uint64_t(table.split) + 1) return badSid;
    uint64_t l2Index = sid & ((uint64_t(1) << table.split) - 1);
    if ((l2Index >> (span - 1)) != 0) return badSid;
    addr = (ste::L1STD_L2PTR.get(l1) << ste::L1STD_L2PTR.lo) + l2Index * sizeof(Ste);
  } else {
    addr = table.base + uint64_t(sid) * sizeof(Ste);
  }

  Ste ste;
  for (unsigned i = 0; i < 8; i++) {
    KJ_IF_MAYBE(v, mem.tryLoad64(addr + i * 8)) {
      ste.dw[i] = *v;
    } else {
      return fetchAbort(EventId::F_STE_FETCH, addr + i * 8);
    }
  }
  return ste;
}

kj::OneOf<SteConfig, Event> decodeSte(const Ste& s, const Features& f, bool cr2E2h) {
  using namespace ste;
  SteConfig c;
  if (!STE_0_V.test(s.dw[0])) return badSte();

  switch (STE_0_CONFIG.get(s.dw[0])) {
    case CONFIG_BYPASS: c.config = StreamConfig::BYPASS; break;
    case CONFIG_S1_TRANS: c.config = StreamConfig::S1_TRANS; break;
    case CONFIG_S2_TRANS: c.config = StreamConfig::S2_TRANS; break;
    case CONFIG_NESTED: c.config = StreamConfig::NESTED; break;
    default: c.config = StreamConfig::ABORT; break;  // Config[2] = 0: abort (facts 2.1)
  }
  if (c.hasStage1() && !f.stage1) return badSte();
  if (c.hasStage2() && !f.stage2) return badSte();

  if (f.ats) {
    c.eats = uint8_t(STE_1_EATS.get(s.dw[1]));
    if (c.eats == 3) return badSte();
    if (c.eats == EATS_S1CHK && c.config != StreamConfig::NESTED) return badSte();
  }
  c.vmid = f.stage2 ? uint16_t(STE_2_S2VMID.get(s.dw[2]) & f.vmidMask()) : 0;

  if (c.hasStage1()) {
    c.s1ContextPtr = STE_0_S1CTXPTR.get(s.dw[0]) << STE_0_S1CTXPTR.lo;
    c.s1CdMax = uint8_t(STE_0_S1CDMAX.get(s.dw[0]));
    if (c.s1CdMax > f.ssidBits) return badSte();
    if (c.s1CdMax != 0) {
      // S1Fmt and S1DSS only matter when substreams are enabled.
      switch (STE_0_S1FMT.get(s.dw[0])) {
        case S1FMT_LINEAR: c.s1Fmt = CdTableFormat::LINEAR; break;
        case S1FMT_4K_L2: c.s1Fmt = CdTableFormat::TWO_LEVEL_4K; break;
        case S1FMT_64K_L2: c.s1Fmt = CdTableFormat::TWO_LEVEL_64K; break;
        default: return badSte();
      }
      if (c.s1Fmt != CdTableFormat::LINEAR && !f.cd2l) return badSte();
      uint64_t dss = STE_1_S1DSS.get(s.dw[1]);
      if (dss == 3) return badSte();
      c.s1Dss = S1Dss(dss);
    }
    switch (STE_1_STRW.get(s.dw[1])) {
      case STRW_NSEL1: c.strw = StreamWorld::NS_EL1; break;
      case STRW_EL2:
        // The EL2 regime has no stage 2.
        if (!f.hyp || c.config != StreamConfig::S1_TRANS) return badSte();
        c.strw = StreamWorld::EL2;
        c.e2h = cr2E2h;
        c.vmid = 0;
        break;
      default: return badSte();  // reserved / EL3 (no secure state modelled)
    }
  }

  if (c.hasStage2()) {
    const uint64_t dw2 = s.dw[2];
    if (!STE_2_S2AA64.test(dw2) || STE_2_S2ENDI.test(dw2) || STE_2_S2S.test(dw2)) return badSte();
    StageConfig& s2 = c.s2;
    s2.stage = Stage::S2;
    KJ_IF_MAYBE(g, decodeS2Tg(STE_2_S2TG.get(dw2), f)) {
      s2.granule = *g;
    } else {
      return badSte();
    }
    // The IPA size is at most the SMMU's IAS, which is its OAS for AArch64 tables (IHI 0070
    // §3.4): an S2T0SZ below 64 - OAS is ILLEGAL.
    const uint8_t maxInput = kj::min(s2.granule == Granule::G64K ? uint8_t(52) : uint8_t(48),
                                     f.oas);
    const uint64_t inputBits = 64 - STE_2_S2T0SZ.get(dw2);
    if (inputBits < MIN_INPUT_BITS || inputBits > maxInput) return badSte();
    s2.inputBits = uint8_t(inputBits);
    KJ_IF_MAYBE(level, decodeS2StartLevel(s2.granule, STE_2_S2SL0.get(dw2), f.oas)) {
      s2.startLevel = *level;
    } else {
      return badSte();
    }
    // Facts 4.4: the start level resolves the remaining input bits, with up to 16 concatenated
    // tables (4 extra bits). A start level that resolves no bits is inconsistent.
    const unsigned shift = levelShift(s2.granule, s2.startLevel);
    if (inputBits <= shift || inputBits - shift > bitsPerLevel(s2.granule) + 4) return badSte();
    s2.outputBits = decodeAddressSize(uint8_t(STE_2_S2PS.get(dw2)), f.oas);
    s2.lpa = f.oas == 52;
    // S2HA needs IDR0.HTTU >= access flag, S2HD needs access + dirty: set without them they
    // are ILLEGAL (IHI 0070 §5.2, §3.13).
    if (STE_2_S2HA.test(dw2) && !f.httuAccess()) return badSte();
    if (STE_2_S2HD.test(dw2) && !f.httuDirty()) return badSte();
    s2.ha = STE_2_S2HA.test(dw2);
    s2.hd = s2.ha && STE_2_S2HD.test(dw2);
    s2.affd = STE_2_S2AFFD.test(dw2);
    // S2TTB bits below the (concatenated) table's alignment are CONSTRAINED UNPREDICTABLE:
    // treated as zero here.
    const uint64_t tableBytes = kj::max(uint64_t(8) << s2.startIndexBits(), uint64_t(64));
    const uint64_t s2ttb = STE_3_S2TTB.get(s.dw[3]) << STE_3_S2TTB.lo;
    if (!tableAddressLegal(s2ttb, s2.granule, s2.outputBits)) return badSte();
    s2.ttb = alignDown(s2ttb, tableBytes);
    c.s2Record = STE_2_S2R.test(dw2);
  }
  return c;
}

}  // namespace nb::smmu
