// components/page_table/arm_lpae: geometry and TCR/VTCR/MAIR computation. See geometry.h.

#include "components/page_table/arm_lpae/geometry.h"

#include "util/bits.h"

#include <kj/debug.h>

namespace nb::pt {

kj::StringPtr errnoName(Errno e) {
  switch (e) {
    case Errno::OK: return "OK";
    case Errno::NOENT: return "ENOENT";
    case Errno::NOMEM: return "ENOMEM";
    case Errno::EXIST: return "EEXIST";
    case Errno::INVAL: return "EINVAL";
    case Errno::RANGE: return "ERANGE";
    case Errno::OPNOTSUPP: return "EOPNOTSUPP";
  }
  return "E?";
}

bool isValidAddressSize(uint32_t bits) {
  switch (bits) {
    case 32: case 36: case 40: case 42: case 44: case 48: case 52: return true;
    default: return false;
  }
}

uint8_t encodeAddressSize(uint32_t bits) {
  // ARM_LPAE_TCR_PS_* (facts 4.5; DDI0487 TCR_EL1.IPS / VTCR_EL2.PS).
  switch (bits) {
    case 32: return 0;
    case 36: return 1;
    case 40: return 2;
    case 42: return 3;
    case 44: return 4;
    case 48: return 5;
    case 52: return 6;
  }
  KJ_FAIL_REQUIRE("no IPS/PS encoding for this address size", bits);
}

namespace {

bool concatMandatory(Granule granule, uint32_t startLevel, uint32_t ias, uint32_t oas) {
  // The three cases where Arm requires concatenated initial tables for a stage-2 walk
  // (DDI0487 K.a R_DXBSH, R_SRKBC; Linux arm_lpae_concat_mandatory, facts 4.4, new rule).
  // The old rule (concatenate whenever start level 0 has <= 16 entries) is deliberately not
  // modelled: D11 says the geometry differs, and the new rule is what current kernels program.
  if (granule == Granule::SIZE_16K && startLevel == 0) return oas == 48 || ias == 48;
  if (granule == Granule::SIZE_4K && startLevel == 0) return oas == 40 || oas == 42;
  return granule == Granule::SIZE_16K && startLevel == 1 && oas == 40;
}

uint64_t leafSizes(Granule granule, uint32_t oas) {
  // arm_lpae_restrict_pgsizes (facts 4.3): 4K|2M|1G, 16K|32M, 64K|512M (+4T if oas > 48).
  switch (granule) {
    case Granule::SIZE_4K: return (uint64_t(1) << 12) | (uint64_t(1) << 21) | (uint64_t(1) << 30);
    case Granule::SIZE_16K: return (uint64_t(1) << 14) | (uint64_t(1) << 25);
    case Granule::SIZE_64K:
      return (uint64_t(1) << 16) | (uint64_t(1) << 29) | (oas > 48 ? uint64_t(1) << 42 : 0);
  }
  KJ_UNREACHABLE;
}

}  // namespace

kj::OneOf<Geometry, Errno> makeGeometry(Format format, Granule granule, uint32_t ias,
                                        uint32_t oas) {
  Geometry g{};
  g.format = format;
  g.granule = granule;
  g.ias = ias;
  g.oas = oas;
  switch (granule) {
    case Granule::SIZE_4K: g.pgShift = 12; break;
    case Granule::SIZE_16K: g.pgShift = 14; break;
    case Granule::SIZE_64K: g.pgShift = 16; break;
    default: return Errno::INVAL;
  }
  switch (format) {
    case Format::STAGE1: case Format::STAGE2: break;
    default: return Errno::INVAL;
  }
  // ias/oas > 52 fail (facts 4.3). 52 bits need the 64K granule: Linux clamps to the granule's
  // maximum (48); we reject instead, so a config never silently means something else.
  if (!isValidAddressSize(ias) || !isValidAddressSize(oas)) return Errno::INVAL;
  if ((ias > 48 || oas > 48) && granule != Granule::SIZE_64K) return Errno::INVAL;

  // Facts 4.3: bits_per_level = pg_shift - 3; va_bits = ias - pg_shift;
  // levels = ceil(va_bits / bits_per_level); start_level = 4 - levels;
  // pgd_bits = va_bits - bits_per_level * (levels - 1).
  g.bitsPerLevel = g.pgShift - 3;
  uint32_t vaBits = ias - g.pgShift;
  uint32_t levels = (vaBits + g.bitsPerLevel - 1) / g.bitsPerLevel;
  g.startLevel = MAX_LEVELS - levels;
  g.pgdBits = vaBits - g.bitsPerLevel * (levels - 1);
  g.concat = 1;

  if (format == Format::STAGE2 && concatMandatory(granule, g.startLevel, ias, oas)) {
    // Facts 4.4: pgd_bits += bits_per_level, start_level += 1; more than 16 tables is refused
    // (Linux WARNs and fails the allocation).
    if ((uint64_t(1) << g.pgdBits) > S2_MAX_CONCAT_TABLES) return Errno::INVAL;
    g.concat = 1u << g.pgdBits;
    g.pgdBits += g.bitsPerLevel;
    g.startLevel += 1;
  }
  g.levels = MAX_LEVELS - g.startLevel;
  g.pgdBytes = kj::max(uint64_t(64), uint64_t(8) << g.pgdBits);

  // Leaf sizes above the start level cannot be mapped (Linux would advertise them and then fail
  // the map with EINVAL at level 3); leave them out so the bitmap is what map() can do.
  uint64_t sizes = leafSizes(granule, oas);
  g.pgsizeBitmap = 0;
  for (uint32_t level = g.startLevel; level < MAX_LEVELS; level++) {
    g.pgsizeBitmap |= sizes & g.blockSize(level);
  }
  return g;
}

uint64_t makeMair() {
  // MAIR byte n holds the attribute for AttrIndx n (facts 4.2 table).
  constexpr Field ATTR[4] = {bits(7, 0), bits(15, 8), bits(23, 16), bits(31, 24)};
  uint64_t mair = 0;
  mair = ATTR[MAIR_ATTR_IDX_NC].with(mair, MAIR_ATTR_NC);
  mair = ATTR[MAIR_ATTR_IDX_CACHE].with(mair, MAIR_ATTR_WBRWA);
  mair = ATTR[MAIR_ATTR_IDX_DEV].with(mair, MAIR_ATTR_DEVICE);
  mair = ATTR[MAIR_ATTR_IDX_INC_OCACHE].with(mair, MAIR_ATTR_INC_OWBRWA);
  return mair;
}

namespace {

uint8_t tg0(Granule granule) {
  switch (granule) {
    case Granule::SIZE_4K: return TCR_TG0_4K;
    case Granule::SIZE_16K: return TCR_TG0_16K;
    case Granule::SIZE_64K: return TCR_TG0_64K;
  }
  KJ_UNREACHABLE;
}

}  // namespace

S1Config makeS1Config(const Geometry& g, uint64_t ttbr) {
  KJ_REQUIRE(g.format == Format::STAGE1, "stage-1 config of a stage-2 table");
  // Coherent walker: IS / WBWA / WBWA (facts 4.5). EPD1 is the CD's business, not ours.
  Tcr tcr{};
  tcr.ips = encodeAddressSize(g.oas);
  tcr.tg = tg0(g.granule);
  tcr.sh = TCR_SH_IS;
  tcr.orgn = TCR_RGN_WBWA;
  tcr.irgn = TCR_RGN_WBWA;
  tcr.tsz = uint8_t(64 - g.ias);
  return S1Config{ttbr, tcr, makeMair()};
}

S2Config makeS2Config(const Geometry& g, uint64_t vttbr) {
  KJ_REQUIRE(g.format == Format::STAGE2, "stage-2 config of a stage-1 table");
  Vtcr vtcr{};
  vtcr.ps = encodeAddressSize(g.oas);
  vtcr.tg = tg0(g.granule);
  vtcr.sh = TCR_SH_IS;
  vtcr.orgn = TCR_RGN_WBWA;
  vtcr.irgn = TCR_RGN_WBWA;
  // VTCR.SL0 (facts 4.5; DDI0487 VTCR_EL2.SL0): the 4K encoding is offset by one level, so
  // bump sl first, then SL0 = ~sl & 3. 4K: 2→L0, 1→L1, 0→L2; 16K/64K: 2→L1, 1→L2, 0→L3.
  uint32_t sl = g.startLevel;
  if (g.granule == Granule::SIZE_4K) sl++;
  vtcr.sl = uint8_t(~sl & 3);
  vtcr.tsz = uint8_t(64 - g.ias);
  return S2Config{vttbr, vtcr};
}

}  // namespace nb::pt
