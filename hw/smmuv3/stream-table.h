// hw/smmuv3: the stream table — STE layout, fetch (linear and two-level) and decode.
//
// Owns: the STE and L1 stream table descriptor layouts (facts 2.1), the stream table's
// geometry from STRTAB_BASE/_CFG, fetching a SID's STE from memory, and decoding it once into a
// typed `SteConfig` with every validity check (C_BAD_STREAMID, C_BAD_STE, F_STE_FETCH).
// Does not own: context descriptors (context-descriptor.h), caching (tlb.h), walking (walk.h).

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/events.h"
#include "hw/smmuv3/features.h"
#include "hw/smmuv3/walk.h"
#include <kj/one-of.h>
#include "util/bits.h"

namespace nb::smmu {

namespace ste {
// Facts 2.1 (Linux STRTAB_STE_<qword>_<field> naming); S2AFFD/S2HD/S2HA per discrepancy D1.
constexpr Field STE_0_V = bit(0);
constexpr Field STE_0_CONFIG = bits(3, 1);
constexpr uint64_t CONFIG_ABORT = 0;
constexpr uint64_t CONFIG_BYPASS = 4;
constexpr uint64_t CONFIG_S1_TRANS = 5;
constexpr uint64_t CONFIG_S2_TRANS = 6;
constexpr uint64_t CONFIG_NESTED = 7;
constexpr Field STE_0_S1FMT = bits(5, 4);
constexpr uint64_t S1FMT_LINEAR = 0;
constexpr uint64_t S1FMT_4K_L2 = 1;
constexpr uint64_t S1FMT_64K_L2 = 2;
constexpr Field STE_0_S1CTXPTR = bits(51, 6);
constexpr Field STE_0_S1CDMAX = bits(63, 59);

constexpr Field STE_1_S1DSS = bits(1, 0);
constexpr uint64_t S1DSS_TERMINATE = 0;
constexpr uint64_t S1DSS_BYPASS = 1;
constexpr uint64_t S1DSS_SSID0 = 2;
constexpr Field STE_1_S1CIR = bits(3, 2);
constexpr Field STE_1_S1COR = bits(5, 4);
constexpr Field STE_1_S1CSH = bits(7, 6);
constexpr Field STE_1_MEV = bit(19);
constexpr Field STE_1_S2FWB = bit(25);
constexpr Field STE_1_S1STALLD = bit(27);
constexpr Field STE_1_EATS = bits(29, 28);
constexpr uint64_t EATS_ABT = 0;
constexpr uint64_t EATS_TRANS = 1;
constexpr uint64_t EATS_S1CHK = 2;
constexpr Field STE_1_STRW = bits(31, 30);
constexpr uint64_t STRW_NSEL1 = 0;
constexpr uint64_t STRW_EL2 = 2;
constexpr Field STE_1_SHCFG = bits(45, 44);

constexpr Field STE_2_S2VMID = bits(15, 0);
constexpr Field STE_2_S2T0SZ = bits(37, 32);
constexpr Field STE_2_S2SL0 = bits(39, 38);
constexpr Field STE_2_S2IR0 = bits(41, 40);
constexpr Field STE_2_S2OR0 = bits(43, 42);
constexpr Field STE_2_S2SH0 = bits(45, 44);
constexpr Field STE_2_S2TG = bits(47, 46);
constexpr uint64_t S2TG_4K = 0;
constexpr uint64_t S2TG_64K = 1;
constexpr uint64_t S2TG_16K = 2;
constexpr Field STE_2_S2PS = bits(50, 48);
constexpr Field STE_2_S2AA64 = bit(51);
constexpr Field STE_2_S2ENDI = bit(52);
constexpr Field STE_2_S2AFFD = bit(53);
constexpr Field STE_2_S2PTW = bit(54);
constexpr Field STE_2_S2HD = bit(55);
constexpr Field STE_2_S2HA = bit(56);
constexpr Field STE_2_S2S = bit(57);
constexpr Field STE_2_S2R = bit(58);

constexpr Field STE_3_S2TTB = bits(51, 4);

// Two-level stream table L1 descriptor (facts 2.1).
constexpr Field L1STD_SPAN = bits(4, 0);
constexpr Field L1STD_L2PTR = bits(51, 6);
}  // namespace ste

struct Ste {
  // 64 bytes = 8 little-endian qwords.
  uint64_t dw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

struct StreamTableConfig {
  // STRTAB_BASE / STRTAB_BASE_CFG decoded (facts 1.8, 2.1).
  uint64_t base = 0;
  bool twoLevel = false;
  uint8_t log2Size = 0;  // capped at IDR1.SIDSIZE
  uint8_t split = 8;     // two-level only: 6, 8 or 10
};

StreamTableConfig decodeStreamTableConfig(uint64_t strtabBase, uint32_t strtabBaseCfg,
                                          const Features& features);
// LOG2SIZE above SIDSIZE behaves as SIDSIZE. A reserved SPLIT (not 6/8/10) is CONSTRAINED
// UNPREDICTABLE; this model rounds it down to a valid one (minimum 6).

kj::OneOf<Ste, Event> fetchSte(const PhysMem& mem, const StreamTableConfig& table, uint32_t sid);
// C_BAD_STREAMID for a SID beyond the table, an invalid (SPAN = 0) L1 descriptor or a SID beyond
// its L1 descriptor's span; F_STE_FETCH (fetch address) for a read outside memory.

enum class StreamConfig : uint8_t { ABORT, BYPASS, S1_TRANS, S2_TRANS, NESTED };
enum class S1Dss : uint8_t { TERMINATE = 0, BYPASS = 1, SSID0 = 2 };
enum class StreamWorld : uint8_t { NS_EL1 = 0, EL2 = 2 };
enum class CdTableFormat : uint8_t { LINEAR = 0, TWO_LEVEL_4K = 1, TWO_LEVEL_64K = 2 };

struct SteConfig {
  // One STE decoded: everything translation needs, nothing raw.
  StreamConfig config = StreamConfig::ABORT;

  // ---- stage 1 (S1_TRANS, NESTED)
  CdTableFormat s1Fmt = CdTableFormat::LINEAR;  // LINEAR whenever S1CDMax = 0
  uint64_t s1ContextPtr = 0;  // CD table (or L1 CD table); nested: an IPA
  uint8_t s1CdMax = 0;        // log2 of the number of CDs; 0 = one CD, no substreams
  S1Dss s1Dss = S1Dss::TERMINATE;
  StreamWorld strw = StreamWorld::NS_EL1;
  bool e2h = false;           // STRW = EL2 with CR2.E2H: ASID-tagged, two privileges

  // ---- stage 2 (S2_TRANS, NESTED)
  StageConfig s2;
  bool s2Record = false;      // S2R: record stage-2 faults in the EVTQ

  uint16_t vmid = 0;          // S2VMID; also tags S1-only entries when stage 2 is implemented
  uint8_t eats = 0;           // decoded but unused: ATS translation requests are not modelled

  bool hasStage1() const {
    return config == StreamConfig::S1_TRANS || config == StreamConfig::NESTED;
  }
  bool hasStage2() const {
    return config == StreamConfig::S2_TRANS || config == StreamConfig::NESTED;
  }
};

kj::OneOf<SteConfig, Event> decodeSte(const Ste& ste, const Features& features, bool cr2E2h);
// C_BAD_STE (no other fields) for: V = 0; a translating Config the SMMU does not implement;
// reserved S1Fmt/S1DSS/STRW/EATS values; S1CDMax above SSIDSIZE; a two-level CD table without
// CD2L; STRW=EL2 without HYP or with stage 2; S2AA64 = 0; S2ENDI = 1 (little-endian only);
// S2S = 1 (no stall model); an unsupported or reserved S2TG; an S2T0SZ/S2SL0 pair that is out of
// range or inconsistent (more than 16 concatenated tables, facts 4.4).
// Config values 1..3 (bit 2 clear) abort like 0 (facts 2.1).

}  // namespace nb::smmu
