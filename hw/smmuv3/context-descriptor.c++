// hw/smmuv3: CD selection, fetch and decode (facts 2.1, 2.5, 3.1).

#include "hw/smmuv3/context-descriptor.h"
#include "hw/smmuv3/features.h"

namespace nb::smmu {

namespace {

Event eventWithId(EventId id) {
  Event e;
  e.id = id;
  return e;
}

constexpr unsigned CDS_PER_4K_LEAF_LOG2 = 6;    // 4 KB / 64 bytes
constexpr unsigned CDS_PER_64K_LEAF_LOG2 = 10;  // facts 2.5: CTXDESC_L2_ENTRIES = 1024
constexpr uint8_t MIN_INPUT_BITS = 25;          // TxSZ <= 39
constexpr uint8_t MAX_INPUT_BITS = 48;          // TxSZ >= 16 (IDR5.VAX = 0)

kj::Maybe<Granule> decodeTg0(uint64_t tg, const Features& f) {
  switch (tg) {
    case cd::TG0_4K: if (f.gran4k) return Granule::G4K; break;
    case cd::TG0_64K: if (f.gran64k) return Granule::G64K; break;
    case cd::TG0_16K: if (f.gran16k) return Granule::G16K; break;
  }
  return nullptr;
}

kj::Maybe<Granule> decodeTg1(uint64_t tg, const Features& f) {
  switch (tg) {
    case cd::TG1_4K: if (f.gran4k) return Granule::G4K; break;
    case cd::TG1_64K: if (f.gran64k) return Granule::G64K; break;
    case cd::TG1_16K: if (f.gran16k) return Granule::G16K; break;
  }
  return nullptr;
}

// The physical address of a CD structure at `addr` (an IPA when nested: CLASS=CD faults).
kj::OneOf<uint64_t, Event> cdStructurePa(Walker& walker, const SteConfig& ste, uint64_t addr) {
  if (ste.config != StreamConfig::NESTED) return addr;
  return walker.translateIpa(ste.s2, addr, Access{}, FaultClass::CD);
}

// Loads `count` qwords from `pa` (within one page).
kj::Maybe<Event> loadWords(const PhysMem& mem, uint64_t pa, uint64_t* out, unsigned count) {
  for (unsigned i = 0; i < count; i++) {
    KJ_IF_MAYBE(v, mem.tryLoad64(pa + i * 8)) {
      out[i] = *v;
    } else {
      Event e = eventWithId(EventId::F_CD_FETCH);
      e.fetchAddr = pa + i * 8;
      return e;
    }
  }
  return nullptr;
}

}  // namespace

kj::OneOf<uint32_t, StageOneBypass, Event> selectCd(const SteConfig& ste,
                                                    kj::Maybe<uint32_t> ssid) {
  KJ_IF_MAYBE(s, ssid) {
    if (ste.s1CdMax == 0 || (*s >> ste.s1CdMax) != 0 ||
        (ste.s1Dss == S1Dss::SSID0 && *s == 0)) {
      return eventWithId(EventId::C_BAD_SUBSTREAMID);
    }
    return *s;
  }
  if (ste.s1CdMax == 0) return uint32_t(0);
  switch (ste.s1Dss) {
    case S1Dss::TERMINATE: return eventWithId(EventId::F_STREAM_DISABLED);
    case S1Dss::BYPASS: return StageOneBypass{};
    case S1Dss::SSID0: return uint32_t(0);
  }
  KJ_UNREACHABLE;
}

kj::OneOf<Cd, Event> fetchCd(const PhysMem& mem, Walker& walker, const SteConfig& ste,
                             uint32_t index) {
  uint64_t addr;
  if (ste.s1CdMax == 0 || ste.s1Fmt == CdTableFormat::LINEAR) {
    addr = ste.s1ContextPtr + uint64_t(index) * sizeof(Cd);
  } else {
    unsigned split = ste.s1Fmt == CdTableFormat::TWO_LEVEL_4K ? CDS_PER_4K_LEAF_LOG2
                                                              : CDS_PER_64K_LEAF_LOG2;
    auto l1Pa = cdStructurePa(walker, ste, ste.s1ContextPtr + uint64_t(index >> split) * 8);
    KJ_IF_MAYBE(e, l1Pa.tryGet<Event>()) return *e;
    uint64_t desc;
    KJ_IF_MAYBE(e, loadWords(mem, l1Pa.get<uint64_t>(), &desc, 1)) return *e;
    if (!cd::L1CD_V.test(desc)) return eventWithId(EventId::C_BAD_SUBSTREAMID);
    addr = (cd::L1CD_L2PTR.get(desc) << cd::L1CD_L2PTR.lo) +
           uint64_t(index & ((1u << split) - 1)) * sizeof(Cd);
  }
  // A CD is 64-byte aligned, so it never crosses a page: one translation covers it.
  auto pa = cdStructurePa(walker, ste, addr);
  KJ_IF_MAYBE(e, pa.tryGet<Event>()) return *e;
  Cd result;
  KJ_IF_MAYBE(e, loadWords(mem, pa.get<uint64_t>(), result.dw, 8)) return *e;
  return result;
}

kj::OneOf<CdConfig, Event> decodeCd(const Cd& d, const SteConfig& ste, const Features& f) {
  using namespace cd;
  const uint64_t dw0 = d.dw[0];
  if (!CD_0_V.test(dw0) || !CD_0_AA64.test(dw0) || CD_0_ENDI.test(dw0) || CD_0_S.test(dw0)) {
    return eventWithId(EventId::C_BAD_CD);
  }
  CdConfig c;
  c.asid = uint16_t(CD_0_ASID.get(dw0) & f.asidMask());
  c.record = CD_0_R.test(dw0);
  c.abortFaults = CD_0_A.test(dw0);
  c.aset = CD_0_ASET.test(dw0);
  c.mair = d.dw[3];
  const bool el2 = ste.strw == StreamWorld::EL2;
  c.singleRegion = el2 && !ste.e2h;

  const uint8_t outputBits = decodeAddressSize(uint8_t(CD_0_IPS.get(dw0)), f.oas);
  // HA needs IDR0.HTTU >= access flag, HD needs access + dirty: set without them the CD is
  // ILLEGAL (IHI 0070 §5.4 CD.HA/HD, §3.13).
  if ((CD_0_HA.test(dw0) && !f.httuAccess()) || (CD_0_HD.test(dw0) && !f.httuDirty())) {
    return eventWithId(EventId::C_BAD_CD);
  }
  const bool ha = CD_0_HA.test(dw0);
  const bool hd = ha && CD_0_HD.test(dw0);

  for (unsigned i = 0; i < 2; i++) {
    TranslationRegion& r = c.region[i];
    if (i == 1 && c.singleRegion) break;  // no TTB1 in the EL2 regime without E2H
    // The EL2 regime without E2H has one region and no EPDx (TCR_EL2 has none): EPD0 has no
    // effect there (IHI 0070 §5.4 CD.EPD0, StreamWorld EL2).
    r.enabled = c.singleRegion || !(i == 0 ? CD_0_EPD0 : CD_0_EPD1).test(dw0);
    r.tbi = (i == 0 ? CD_0_TBI0 : CD_0_TBI1).test(dw0);
    if (!r.enabled) continue;
    StageConfig& s = r.stage;
    s.stage = Stage::S1;
    KJ_IF_MAYBE(g, i == 0 ? decodeTg0(CD_0_TG0.get(dw0), f) : decodeTg1(CD_0_TG1.get(dw0), f)) {
      s.granule = *g;
    } else {
      return eventWithId(EventId::C_BAD_CD);
    }
    uint64_t inputBits = 64 - (i == 0 ? CD_0_T0SZ : CD_0_T1SZ).get(dw0);
    if (inputBits < MIN_INPUT_BITS || inputBits > MAX_INPUT_BITS) {
      return eventWithId(EventId::C_BAD_CD);
    }
    s.inputBits = uint8_t(inputBits);
    s.startLevel = uint8_t(s1StartLevel(s.granule, s.inputBits));  // facts 4.3
    s.outputBits = outputBits;
    s.lpa = f.oas == 52;
    s.singlePrivilege = c.singleRegion;
    s.ha = ha;
    s.hd = hd;
    s.affd = CD_0_AFFD.test(dw0);
    // TTB bits below the start table's alignment are treated as zero (CONSTRAINED
    // UNPREDICTABLE choice).
    uint64_t ttb = i == 0 ? CD_1_TTB0.get(d.dw[1]) << CD_1_TTB0.lo
                          : CD_2_TTB1.get(d.dw[2]) << CD_2_TTB1.lo;
    if (!tableAddressLegal(ttb, s.granule, outputBits)) return eventWithId(EventId::C_BAD_CD);
    s.ttb = alignDown(ttb, kj::max(uint64_t(8) << s.startIndexBits(), uint64_t(64)));
  }
  return c;
}

}  // namespace nb::smmu
