// STE and CD recipes, used bits, vSTE validation. See entries.h.

#include "components/domain_allocator/common/entries.h"

#include <kj/debug.h>
#include <kj/vector.h>

namespace nb::domains {

namespace ste = smmuv3::ste;
namespace cd = smmuv3::cd;

kj::String KJ_STRINGIFY(const Entry& e) {
  kj::Vector<kj::String> words;
  for (auto w : e.dw) words.add(kj::str("0x", kj::hex(w)));
  return kj::str("[", kj::strArray(words, ", "), "]");
}

namespace {

uint64_t shcfgIncoming(const SteOptions& o, uint64_t dw1) {
  return o.attrTypesOvr ? ste::STE_1_SHCFG.with(dw1, ste::SHCFG_INCOMING) : dw1;
}

uint64_t eats(const SteOptions& o, uint64_t dw1) {
  return ste::STE_1_EATS.with(dw1, o.ats ? ste::EATS_TRANS : ste::EATS_ABT);
}

}  // namespace

Ste makeAbortSte() {
  Ste s;
  s.dw[0] = ste::STE_0_CONFIG.with(ste::STE_0_V.with(0, 1), ste::CONFIG_ABORT);
  return s;
}

Ste makeBypassSte(const SteOptions& options) {
  Ste s;
  s.dw[0] = ste::STE_0_CONFIG.with(ste::STE_0_V.with(0, 1), ste::CONFIG_BYPASS);
  s.dw[1] = shcfgIncoming(options, 0);
  return s;
}

Ste makeCdTableSte(uint64_t cdTablePa, CdTableFormat format, uint8_t s1CdMax, S1Dss s1Dss,
                   const SteOptions& options) {
  KJ_REQUIRE(cdTablePa % 64 == 0, "CD table must be 64-byte aligned", cdTablePa);
  Ste s;
  uint64_t dw0 = ste::STE_0_V.with(0, 1);
  dw0 = ste::STE_0_CONFIG.with(dw0, ste::CONFIG_S1_TRANS);
  dw0 = ste::STE_0_S1FMT.with(dw0, uint64_t(format));
  dw0 = ste::STE_0_S1CTXPTR.set(dw0, cdTablePa >> 6);
  dw0 = ste::STE_0_S1CDMAX.set(dw0, s1CdMax);
  s.dw[0] = dw0;

  uint64_t dw1 = ste::STE_1_S1DSS.with(0, uint64_t(s1Dss));
  dw1 = ste::STE_1_S1CIR.with(dw1, ste::S1C_CACHE_WBRA);
  dw1 = ste::STE_1_S1COR.with(dw1, ste::S1C_CACHE_WBRA);
  dw1 = ste::STE_1_S1CSH.with(dw1, ste::S1C_SH_ISH);
  dw1 = eats(options, dw1);
  dw1 = ste::STE_1_STRW.with(dw1, ste::STRW_NSEL1);
  if (s1Dss == S1Dss::BYPASS) dw1 = shcfgIncoming(options, dw1);
  s.dw[1] = dw1;
  s.dw[2] = ste::STE_2_S2VMID.with(0, 0);
  return s;
}

Ste makeS2Ste(uint16_t vmid, const Vtcr& vtcr, uint64_t vttbr, const SteOptions& options) {
  KJ_REQUIRE(vttbr % 16 == 0, "VTTBR must be 16-byte aligned", vttbr);
  Ste s;
  s.dw[0] = ste::STE_0_CONFIG.with(ste::STE_0_V.with(0, 1), ste::CONFIG_S2_TRANS);

  uint64_t dw1 = eats(options, 0);
  if (options.s2fwb) dw1 = ste::STE_1_S2FWB.with(dw1, 1);
  s.dw[1] = shcfgIncoming(options, dw1);

  uint64_t dw2 = ste::STE_2_S2VMID.with(0, vmid);
  dw2 = ste::STE_2_S2T0SZ.set(dw2, vtcr.tsz);
  dw2 = ste::STE_2_S2SL0.set(dw2, vtcr.sl);
  dw2 = ste::STE_2_S2IR0.set(dw2, vtcr.irgn);
  dw2 = ste::STE_2_S2OR0.set(dw2, vtcr.orgn);
  dw2 = ste::STE_2_S2SH0.set(dw2, vtcr.sh);
  dw2 = ste::STE_2_S2TG.set(dw2, vtcr.tg);
  dw2 = ste::STE_2_S2PS.set(dw2, vtcr.ps);
  dw2 = ste::STE_2_S2AA64.with(dw2, 1);
  dw2 = ste::STE_2_S2PTW.with(dw2, 1);
  dw2 = ste::STE_2_S2R.with(dw2, 1);
  s.dw[2] = dw2;
  s.dw[3] = ste::STE_3_S2TTB.set(0, vttbr >> 4);
  return s;
}

Ste makeNestedSte(uint16_t vmid, const Vtcr& vtcr, uint64_t vttbr, uint64_t vsteDw0,
                  uint64_t vsteDw1, const SteOptions& options) {
  KJ_REQUIRE((vsteDw0 & ~VSTE_0_ALLOWED) == 0 && (vsteDw1 & ~VSTE_1_ALLOWED) == 0 &&
                 ste::STE_1_EATS.get(vsteDw1) == 0,
             "vSTE was not validated", vsteDw0, vsteDw1);
  Ste s = makeS2Ste(vmid, vtcr, vttbr, options);
  constexpr uint64_t GUEST_0 =
      ste::STE_0_S1FMT.mask() | ste::STE_0_S1CTXPTR.mask() | ste::STE_0_S1CDMAX.mask();
  s.dw[0] =
      ste::STE_0_CONFIG.with(ste::STE_0_V.with(0, 1), ste::CONFIG_NESTED) | (vsteDw0 & GUEST_0);
  s.dw[1] = eats(options, s.dw[1] | vsteDw1);
  s.dw[1] = ste::STE_1_MEV.with(s.dw[1], 1);
  return s;
}

Cd makeS1Cd(uint16_t asid, const Tcr& tcr, uint64_t ttbr, uint64_t mair, bool dirtyTracking) {
  KJ_REQUIRE(ttbr % 16 == 0, "TTBR must be 16-byte aligned", ttbr);
  Cd c;
  uint64_t dw0 = cd::CD_0_T0SZ.set(0, tcr.tsz);
  dw0 = cd::CD_0_TG0.set(dw0, tcr.tg);
  dw0 = cd::CD_0_IRGN0.set(dw0, tcr.irgn);
  dw0 = cd::CD_0_ORGN0.set(dw0, tcr.orgn);
  dw0 = cd::CD_0_SH0.set(dw0, tcr.sh);
  dw0 = cd::CD_0_IPS.set(dw0, tcr.ips);
  dw0 = cd::CD_0_EPD1.with(dw0, 1);
  dw0 = cd::CD_0_V.with(dw0, 1);
  dw0 = cd::CD_0_AA64.with(dw0, 1);
  dw0 = cd::CD_0_R.with(dw0, 1);
  dw0 = cd::CD_0_A.with(dw0, 1);
  dw0 = cd::CD_0_ASET.with(dw0, 1);
  dw0 = cd::CD_0_ASID.with(dw0, asid);
  if (dirtyTracking) dw0 = cd::CD_0_HD.with(cd::CD_0_HA.with(dw0, 1), 1);
  c.dw[0] = dw0;
  c.dw[1] = cd::CD_1_TTB0.set(0, ttbr >> 4);
  c.dw[3] = mair;
  return c;
}

uint64_t makeL1CdDescriptor(uint64_t l2Pa) {
  KJ_REQUIRE(l2Pa % 4096 == 0, "level-2 CD table must be 4 KiB aligned", l2Pa);
  return cd::L1CD_L2PTR.set(cd::L1CD_V.with(0, 1), l2Pa >> 12);
}

uint64_t makeL1StreamDescriptor(uint64_t l2Pa, unsigned split) {
  KJ_REQUIRE(l2Pa % 64 == 0, "level-2 stream table must be 64-byte aligned", l2Pa);
  return ste::L1STD_L2PTR.set(ste::L1STD_SPAN.set(0, split + 1), l2Pa >> 6);
}

Entry steUsed(const Ste& s) {
  Entry used;
  used.dw[0] = ste::STE_0_V.mask();
  if (!ste::STE_0_V.test(s.dw[0])) return used;
  used.dw[0] |= ste::STE_0_CONFIG.mask();
  uint64_t cfg = ste::STE_0_CONFIG.get(s.dw[0]);
  if (cfg & 1) {  // stage 1: S1_TRANS or NESTED
    used.dw[0] |= ste::STE_0_S1FMT.mask() | ste::STE_0_S1CTXPTR.mask() | ste::STE_0_S1CDMAX.mask();
    used.dw[1] |= ste::STE_1_S1DSS.mask() | ste::STE_1_S1CIR.mask() | ste::STE_1_S1COR.mask() |
                  ste::STE_1_S1CSH.mask() | ste::STE_1_S1STALLD.mask() | ste::STE_1_STRW.mask() |
                  ste::STE_1_EATS.mask() | ste::STE_1_MEV.mask();
    used.dw[2] |= ste::STE_2_S2VMID.mask();
    if (ste::STE_1_S1DSS.get(s.dw[1]) == ste::S1DSS_BYPASS) used.dw[1] |= ste::STE_1_SHCFG.mask();
  }
  if (cfg & 2) {  // stage 2: S2_TRANS or NESTED
    used.dw[1] |= ste::STE_1_S2FWB.mask() | ste::STE_1_EATS.mask() | ste::STE_1_SHCFG.mask() |
                  ste::STE_1_MEV.mask();
    used.dw[2] |= ste::STE_2_S2VMID.mask() | ste::STE_2_VTCR.mask() | ste::STE_2_S2AA64.mask() |
                  ste::STE_2_S2ENDI.mask() | ste::STE_2_S2PTW.mask() | ste::STE_2_S2S.mask() |
                  ste::STE_2_S2R.mask();
    used.dw[3] |= ste::STE_3_S2TTB.mask();
  }
  if (cfg == ste::CONFIG_BYPASS) used.dw[1] |= ste::STE_1_SHCFG.mask();
  return used;
}

Entry cdUsed(const Cd& c) {
  Entry used;
  if (!cd::CD_0_V.test(c.dw[0])) {
    used.dw[0] = cd::CD_0_V.mask();
    return used;
  }
  for (auto& w : used.dw) w = ~uint64_t(0);
  if (cd::CD_0_EPD0.test(c.dw[0]) && !cd::CD_0_EPD1.test(c.dw[0])) {
    used.dw[0] &= ~(cd::CD_0_T0SZ.mask() | cd::CD_0_TG0.mask() | cd::CD_0_IRGN0.mask() |
                    cd::CD_0_ORGN0.mask() | cd::CD_0_SH0.mask());
    used.dw[1] &= ~cd::CD_1_TTB0.mask();
  }
  return used;
}

kj::OneOf<ValidVste, VsteError> validateVste(uint64_t dw0, uint64_t dw1) {
  if (!ste::STE_0_V.test(dw0)) return ValidVste{0, 0, VsteConfig::ABORT, false};
  if (dw0 & ~VSTE_0_ALLOWED) {
    return VsteError{kj::str("vSTE dw0 sets bits outside the guest-settable mask: 0x",
                             kj::hex(dw0 & ~VSTE_0_ALLOWED))};
  }
  if (dw1 & ~VSTE_1_ALLOWED) {
    return VsteError{kj::str("vSTE dw1 sets bits outside the guest-settable mask: 0x",
                             kj::hex(dw1 & ~VSTE_1_ALLOWED))};
  }
  VsteConfig config;
  switch (ste::STE_0_CONFIG.get(dw0)) {
    case ste::CONFIG_ABORT: config = VsteConfig::ABORT; break;
    case ste::CONFIG_BYPASS: config = VsteConfig::BYPASS; break;
    case ste::CONFIG_S1_TRANS: config = VsteConfig::S1_TRANS; break;
    default:
      return VsteError{kj::str("vSTE Config ", ste::STE_0_CONFIG.get(dw0),
                               " is not abort (0), bypass (4) or s1_trans (5)")};
  }
  uint64_t eats = ste::STE_1_EATS.get(dw1);
  if (eats != ste::EATS_ABT && eats != ste::EATS_TRANS) {
    return VsteError{kj::str("vSTE EATS ", eats, " is not abt (0) or trans (1)")};
  }
  return ValidVste{dw0, ste::STE_1_EATS.with(dw1, 0), config,
                   config == VsteConfig::S1_TRANS && eats == ste::EATS_TRANS};
}

}  // namespace nb::domains
