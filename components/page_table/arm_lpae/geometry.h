// components/page_table/arm_lpae: the shape of one VMSAv8-64 long-descriptor page table, and the
// configuration an SMMU needs to walk it (Linux io-pgtable formats ARM_64_LPAE_S1/_S2).
//
// Owns: the typed error enum of the page-table engine (Errno), granule and address-size
// validation, the level geometry of facts 4.3 (bits per level, start level, PGD size, leaf
// sizes), the mandatory stage-2 concatenation of facts 4.4, and the decoded TCR/VTCR/MAIR of
// facts 4.5 (arm_lpae_s1_cfg / arm_lpae_s2_cfg).
// Does not own: descriptor bits (descriptor.h) or the tables themselves (io-page-table.h).
//
// Walker model: always coherent (IS / WBWA / WBWA), so the non-coherent TCR variants and the
// OUTER_WBWA quirk are not modelled. Levels are numbered as in the Arm ARM: 0..3, 3 = smallest.

#pragma once

#include <kj/one-of.h>
#include <kj/string.h>
#include <cstdint>

namespace nb::pt {

enum class Errno : int {
  // Linux errno meanings, Linux numbers (so they cross RPC unchanged). The enumerators drop the
  // leading `E` only because <cerrno> defines EINVAL & co. as macros; errnoName() gives the
  // Linux spelling.
  OK = 0,
  NOENT = 2,        // ENOENT: unmap reached an iova with nothing mapped.
  NOMEM = 12,       // ENOMEM: the FrameSource has no frame for a table.
  EXIST = 17,       // EEXIST: map over an existing leaf (io-pgtable-arm, facts 4.6 step 5/6).
  INVAL = 22,       // EINVAL: bad config, misaligned or empty range, no READ/WRITE, refused
                    //   partial unmap of a larger leaf, dirty scan on a table without HD.
  RANGE = 34,       // ERANGE: iova beyond IAS or PA beyond OAS (facts 4.6 step 2).
  OPNOTSUPP = 95,   // EOPNOTSUPP: a quirk the format does not support (HD on stage 2, 4.9).
};

kj::StringPtr errnoName(Errno e);
// "EINVAL", "EEXIST", ...
inline kj::StringPtr KJ_STRINGIFY(Errno e) { return errnoName(e); }

enum class Format : uint8_t {
  STAGE1,  // ARM_64_LPAE_S1: TTBR/TCR/MAIR, AP/AttrIndx/nG leaves.
  STAGE2,  // ARM_64_LPAE_S2: VTTBR/VTCR, S2AP/MemAttr leaves, mandatory concatenation.
};

enum class Granule : uint32_t {
  // Translation granule, in bytes.
  SIZE_4K = 4096,
  SIZE_16K = 16384,
  SIZE_64K = 65536,
};

constexpr uint32_t MAX_LEVELS = 4;   // ARM_LPAE_MAX_LEVELS: levels 0..3.
constexpr uint32_t MAX_ADDRESS_BITS = 52;
constexpr uint32_t S2_MAX_CONCAT_TABLES = 16;  // ARM_LPAE_S2_MAX_CONCAT_PAGES (facts 4.4).

bool isValidAddressSize(uint32_t bits);
// One of 32, 36, 40, 42, 44, 48, 52 (the PARange / IPS encodings of facts 4.5).

struct Geometry {
  // Computed by makeGeometry(); plain value. Formulas of facts 4.3 (arm_lpae_alloc_pgtable).
  Format format;
  Granule granule;
  uint32_t ias;           // input address bits
  uint32_t oas;           // output address bits
  uint32_t pgShift;       // log2(granule): 12, 14, 16
  uint32_t bitsPerLevel;  // pgShift - 3: 9, 11, 13
  uint32_t startLevel;    // first level walked, after any concatenation
  uint32_t levels;        // levels walked: MAX_LEVELS - startLevel (after concatenation)
  uint32_t pgdBits;       // index bits at startLevel, including concatenated tables
  uint32_t concat;        // tables concatenated at startLevel: 1 = none, else 2..16 (stage 2)
  uint64_t pgdBytes;      // 8 << pgdBits, at least 64
  uint64_t pgsizeBitmap;  // leaf sizes this table can hold (levels >= startLevel only)

  constexpr uint64_t pageSize() const { return uint64_t(1) << pgShift; }

  constexpr uint32_t levelShift(uint32_t level) const {
    // ARM_LPAE_LVL_SHIFT: (4 - level) * bitsPerLevel + 3 (facts 4.3 table).
    return (MAX_LEVELS - level) * bitsPerLevel + 3;
  }
  constexpr uint64_t blockSize(uint32_t level) const { return uint64_t(1) << levelShift(level); }
  constexpr uint32_t indexBits(uint32_t level) const {
    // At the start level the index is pgdBits wide, so it covers concatenated tables.
    return level == startLevel ? pgdBits : bitsPerLevel;
  }
  constexpr uint64_t entries(uint32_t level) const { return uint64_t(1) << indexBits(level); }
  constexpr uint64_t index(uint64_t iova, uint32_t level) const {
    return (iova >> levelShift(level)) & (entries(level) - 1);
  }
  constexpr uint64_t tableBytes(uint32_t level) const { return entries(level) * 8; }
  constexpr bool leafAllowed(uint32_t level) const {
    return level >= startLevel && level < MAX_LEVELS && (pgsizeBitmap & blockSize(level)) != 0;
  }
  constexpr uint64_t inputLimit() const { return uint64_t(1) << ias; }
  constexpr uint64_t outputLimit() const { return uint64_t(1) << oas; }
};

kj::OneOf<Geometry, Errno> makeGeometry(Format format, Granule granule, uint32_t ias, uint32_t oas);
// EINVAL for an unknown granule, an address size outside {32,36,40,42,44,48,52}, 52 bits with a
// granule other than 64K, or a stage-2 concatenation of more than 16 tables.

// ======================================================================================
// Configuration exported to the SMMU (facts 4.5; Linux io-pgtable-arm.h encodings).
// Decoded fields, packed into a CD/STE only at the hardware edge.

// TCR.SH / VTCR.SH0
constexpr uint8_t TCR_SH_NS = 0;
constexpr uint8_t TCR_SH_OS = 2;
constexpr uint8_t TCR_SH_IS = 3;
// TCR.IRGN/ORGN
constexpr uint8_t TCR_RGN_NC = 0;
constexpr uint8_t TCR_RGN_WBWA = 1;
constexpr uint8_t TCR_RGN_WT = 2;
constexpr uint8_t TCR_RGN_WB = 3;
// TCR.TG0 / VTCR.TG0
constexpr uint8_t TCR_TG0_4K = 0;
constexpr uint8_t TCR_TG0_64K = 1;
constexpr uint8_t TCR_TG0_16K = 2;
// TCR.IPS / VTCR.PS: 32→0, 36→1, 40→2, 42→3, 44→4, 48→5, 52→6.

// MAIR attribute indices and bytes (facts 4.2).
constexpr uint32_t MAIR_ATTR_IDX_NC = 0;
constexpr uint32_t MAIR_ATTR_IDX_CACHE = 1;
constexpr uint32_t MAIR_ATTR_IDX_DEV = 2;
constexpr uint32_t MAIR_ATTR_IDX_INC_OCACHE = 3;
constexpr uint8_t MAIR_ATTR_NC = 0x44;          // normal non-cacheable
constexpr uint8_t MAIR_ATTR_WBRWA = 0xff;       // normal write-back, RW-allocate
constexpr uint8_t MAIR_ATTR_DEVICE = 0x04;      // Device-nGnRE
constexpr uint8_t MAIR_ATTR_INC_OWBRWA = 0xf4;  // inner non-cacheable, outer WB
uint64_t makeMair();
// 0x00000000f404ff44.

struct Tcr {
  uint8_t ips;   // output size (from oas)
  uint8_t tg;    // TG0 encoding
  uint8_t sh;    // walk shareability
  uint8_t orgn;  // walk outer cacheability
  uint8_t irgn;  // walk inner cacheability
  uint8_t tsz;   // T0SZ = 64 - ias
};

struct S1Config {
  // arm_lpae_s1_cfg
  uint64_t ttbr;  // PGD physical address
  Tcr tcr;
  uint64_t mair;
};

struct Vtcr {
  uint8_t ps;    // output size (from oas)
  uint8_t tg;    // TG0 encoding
  uint8_t sh;
  uint8_t orgn;
  uint8_t irgn;
  uint8_t sl;    // SL0: ~startLevel & 3, with startLevel + 1 first for the 4K granule
  uint8_t tsz;   // T0SZ = 64 - ias
};

struct S2Config {
  // arm_lpae_s2_cfg
  uint64_t vttbr;  // PGD physical address (the first of any concatenated tables)
  Vtcr vtcr;
};

uint8_t encodeAddressSize(uint32_t bits);
// IPS/PS encoding; the size must be valid (isValidAddressSize).
S1Config makeS1Config(const Geometry& geometry, uint64_t ttbr);
S2Config makeS2Config(const Geometry& geometry, uint64_t vttbr);

}  // namespace nb::pt
