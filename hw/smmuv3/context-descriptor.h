// hw/smmuv3: context descriptors — choosing a CD for a transaction, fetching it from
// linear or two-level CD tables, and decoding it into a typed `CdConfig`.
//
// Owns: the S1CDMax/S1DSS rules for which CD (if any) a transaction uses, CD fetch (through
// stage 2 when nested: CLASS=CD faults) and the CD validity checks (C_BAD_CD, C_BAD_SUBSTREAMID, F_CD_FETCH, F_STREAM_DISABLED).
// Does not own: the STE (stream-table.h) or the stage-1 walk itself (walk.h).

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/events.h"
#include "hw/smmuv3/features.h"
#include "hw/smmuv3/stream-table.h"
#include "hw/smmuv3/walk.h"
#include <kj/one-of.h>
#include "util/bits.h"
#include "util/smmuv3/cd.h"

namespace nb::smmu {

// CD and L1 CD descriptor layouts: util/smmuv3/cd.h (facts 2.5).
using namespace nb::smmuv3;

struct Cd {
  // 64 bytes = 8 little-endian qwords.
  uint64_t dw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

struct TranslationRegion {
  // One of the two stage-1 VA regions (TTB0: VA[55] = 0, TTB1: VA[55] = 1).
  bool enabled = false;  // !EPDx
  bool tbi = false;      // top byte ignored
  StageConfig stage;
};

struct CdConfig {
  // One CD decoded.
  uint16_t asid = 0;
  bool record = false;   // R: record stage-1 faults in the EVTQ
  bool abortFaults = true;  // A: a terminated stage-1 fault aborts (0: RAZ/WI, with TERM_MODEL 0)
  bool aset = false;
  uint64_t mair = 0;     // decoded for completeness; memory attributes are not modelled
  bool singleRegion = false;  // EL2 regime without E2H: TTB0 only
  TranslationRegion region[2];
};

struct StageOneBypass {};
// S1DSS=BYPASS for a transaction without a substream: stage 1 is skipped.

kj::OneOf<uint32_t, StageOneBypass, Event> selectCd(const SteConfig& ste,
                                                    kj::Maybe<uint32_t> ssid);
// Which CD a transaction uses (facts 2.1, 2.5, 3.1):
//  - SSID with S1CDMax = 0, SSID >= 2^S1CDMax, or SSID 0 with S1DSS=SSID0: C_BAD_SUBSTREAMID;
//  - no SSID: CD 0 when S1CDMax = 0 or S1DSS=SSID0; StageOneBypass for S1DSS=BYPASS;
//    F_STREAM_DISABLED for S1DSS=TERMINATE.

kj::OneOf<Cd, Event> fetchCd(const PhysMem& mem, Walker& walker, const SteConfig& ste,
                             uint32_t index);
// Reads CD `index` from the linear or two-level table (S1Fmt; 4K leaves hold 64 CDs, 64K leaves
// 1024). Nested: the L1 descriptor and the CD addresses are IPAs translated by the STE's stage 2
// (faults S2=1, CLASS=CD). An invalid L1 descriptor is C_BAD_SUBSTREAMID; a read outside memory
// is F_CD_FETCH with the physical fetch address.

kj::OneOf<CdConfig, Event> decodeCd(const Cd& cd, const SteConfig& ste, const Features& features);
// C_BAD_CD for: V = 0; AA64 = 0; ENDI = 1; S = 1 (no stall model); HA without HTTU, HD
// without HTTU access+dirty; for an enabled region, a reserved or unsupported granule, a TxSZ
// outside 16..39 (25- to 48-bit inputs; values outside are CONSTRAINED UNPREDICTABLE, rejected
// here), or a TTB beyond the effective IPS (IPS capped at the OAS) or at/above 2^48 with 4K/16K
// (IHI 0070 §5.4). The regime comes from the STE (STRW, E2H); in the EL2 regime without E2H
// EPD0 has no effect.

}  // namespace nb::smmu
