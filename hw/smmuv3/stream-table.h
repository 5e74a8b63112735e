// hw/smmuv3: the stream table — fetch (linear and two-level) and STE decode.
//
// Owns: the stream table's geometry from STRTAB_BASE/_CFG, fetching a SID's STE from memory,
// and decoding it once into a typed `SteConfig` with every validity check (C_BAD_STREAMID, C_BAD_STE, F_STE_FETCH).
// Does not own: context descriptors (context-descriptor.h), caching (tlb.h), walking (walk.h).

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/events.h"
#include "hw/smmuv3/features.h"
#include "hw/smmuv3/walk.h"
#include <kj/one-of.h>
#include "util/bits.h"
#include "util/smmuv3/ste.h"

namespace nb::smmu {

// STE and L1 descriptor layouts: util/smmuv3/ste.h (facts 2.1).
using namespace nb::smmuv3;

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
// C_BAD_STREAMID for a SID beyond the table, an invalid (SPAN = 0) or out-of-range (SPAN above
// SPLIT + 1, reserved values included; IHI 0070 §3.3.2) L1 descriptor, or a SID beyond its L1
// descriptor's span; F_STE_FETCH (fetch address) for a read outside memory.

bool tableAddressLegal(uint64_t ttb, Granule granule, uint8_t outputBits);
// False for a translation table base the STE/CD may not hold: beyond `outputBits` (the
// effective IPS/S2PS) or, with the 4K/16K granules, at or above 2^48 (IHI 0070 §5.2, §5.4).

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
// range or inconsistent (more than 16 concatenated tables, facts 4.4); an IPA size above the
// OAS; a start level the OAS does not allow (4K L0 below 44 bits, 16K L1 below 42, 64K L1 below
// 44, 16K L0 at all); S2HA without HTTU or S2HD without access+dirty; an S2TTB beyond the
// effective S2PS or at/above 2^48 with 4K/16K (IHI 0070 §5.2).
// Config values 1..3 (bit 2 clear) abort like 0 (facts 2.1).

}  // namespace nb::smmu
