// components/domain_allocator/common: the STEs and CDs the driver writes, as pure functions.
//
// Owns: the recipes of facts 2.2 (abort, bypass, CD-table, stage-2, nested STEs) and 2.5 (the
// stage-1 CD, level-1 descriptors), the "used bits" of an STE and a CD (facts 2.4, what the
// hitless update compares), and the guest vSTE validation of facts 2.3. Builders are `make…`:
// inputs are decoded values, output the 8 little-endian qwords; field positions come from
// util/smmuv3. Does not own writing them (hitless.h plans the steps, the allocator performs
// them) or deciding which recipe a device needs (allocator.c++).

#pragma once

#include "util/smmuv3/cd.h"
#include "util/smmuv3/ste.h"

#include <kj/one-of.h>
#include <kj/string.h>
#include <cstdint>

namespace nb::domains {

struct Entry {
  // One STE or CD: 64 bytes = 8 little-endian qwords.
  uint64_t dw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  bool operator==(const Entry&) const = default;
};
using Ste = Entry;
using Cd = Entry;

kj::String KJ_STRINGIFY(const Entry& e);  // "[0x..., 0x..., ...]" (8 qwords)

struct SteOptions {
  // What the SMMU and the master ask of every STE (facts 2.2).
  bool attrTypesOvr = false;  // IDR1.ATTR_TYPES_OVR: SHCFG = INCOMING where the recipe says
  bool ats = false;           // the master has ATS enabled: EATS = TRANS (never, here: no ATS)
  bool s2fwb = false;         // the stage-2 table has the S2FWB quirk (IDR3.FWB)
};

struct Vtcr {
  // What a stage-2 STE's VTCR block holds (page-table.capnp Vtcr, VTCR_EL2 encodings).
  uint8_t tsz, sl, irgn, orgn, sh, tg, ps;
};

struct Tcr {
  // What a stage-1 CD's translation fields hold (page-table.capnp Tcr, TCR_EL1 encodings).
  uint8_t tsz, tg, irgn, orgn, sh, ips;
};

// ---- STE recipes (facts 2.2)

Ste makeAbortSte();
// V = 1, Config = abort.

Ste makeBypassSte(const SteOptions& options);
// V = 1, Config = bypass; SHCFG = INCOMING with ATTR_TYPES_OVR.

enum class S1Dss : uint8_t { TERMINATE = 0, BYPASS = 1, SSID0 = 2 };
enum class CdTableFormat : uint8_t { LINEAR = 0, TWO_LEVEL_64K = 2 };

Ste makeCdTableSte(uint64_t cdTablePa, CdTableFormat format, uint8_t s1CdMax, S1Dss s1Dss,
                   const SteOptions& options);
// Config = S1_TRANS over a CD table: S1CIR = S1COR = WBRA, S1CSH = ISH, EATS per ATS, SHCFG =
// INCOMING with ATTR_TYPES_OVR and S1DSS = bypass, STRW = NSEL1, S2VMID = 0. No stall model:
// S1STALLD stays 0.

Ste makeS2Ste(uint16_t vmid, const Vtcr& vtcr, uint64_t vttbr, const SteOptions& options);
// Config = S2_TRANS: S2VMID, the VTCR block, S2AA64, S2PTW, S2R, S2TTB; S2FWB with the quirk;
// SHCFG = INCOMING with ATTR_TYPES_OVR; EATS per ATS. Little-endian, no stalls: S2ENDI = S2S = 0.

Ste makeNestedSte(uint16_t vmid, const Vtcr& vtcr, uint64_t vttbr, uint64_t vsteDw0,
                  uint64_t vsteDw1, const SteOptions& options);
// The stage-2 STE of the parent with dw0 replaced by V + Config = NESTED + the guest's S1Fmt,
// S1ContextPtr and S1CDMax, the guest's dw1 bits ORed in (EATS already cleared), EATS per ATS,
// and MEV set. `vsteDw0/1` must have passed validateVste.

// ---- CD recipes (facts 2.5)

Cd makeS1Cd(uint16_t asid, const Tcr& tcr, uint64_t ttbr, uint64_t mair, bool dirtyTracking);
// T0SZ, TG0, IRGN0, ORGN0, SH0, IPS from the TCR; EPD1, V, AA64, R, A, ASET, ASID; HA|HD with
// dirty tracking; TTB0; MAIR. Little-endian, no stalls: ENDI = S = 0.

uint64_t makeL1CdDescriptor(uint64_t l2Pa);  // V, L2PTR (a 64 KiB leaf of 1024 CDs)
uint64_t makeL1StreamDescriptor(uint64_t l2Pa, unsigned split);  // SPAN = split + 1, L2PTR

// ---- used bits (facts 2.4)

Entry steUsed(const Ste& ste);
Entry cdUsed(const Cd& cd);

// ---- guest vSTEs (facts 2.3)

enum class VsteConfig : uint8_t { ABORT, BYPASS, S1_TRANS };

struct ValidVste {
  uint64_t dw0, dw1;  // as stored: V = 0 zeroes both, EATS cleared
  VsteConfig config;
  bool ats;  // S1_TRANS with EATS = TRANS
};

struct VsteError {
  kj::String message;  // what was wrong: the result is eIo
};

kj::OneOf<ValidVste, VsteError> validateVste(uint64_t dw0, uint64_t dw1);
// arm_smmu_validate_vste: V = 0 is accepted as abort; any bit outside the guest-settable masks,
// a Config other than abort/bypass/s1_trans, or EATS other than abt/trans is an error.

constexpr uint64_t VSTE_0_ALLOWED = smmuv3::ste::STE_0_V.mask() | smmuv3::ste::STE_0_CONFIG.mask() |
                                    smmuv3::ste::STE_0_S1FMT.mask() |
                                    smmuv3::ste::STE_0_S1CTXPTR.mask() |
                                    smmuv3::ste::STE_0_S1CDMAX.mask();
constexpr uint64_t VSTE_1_ALLOWED =
    smmuv3::ste::STE_1_S1DSS.mask() | smmuv3::ste::STE_1_S1CIR.mask() |
    smmuv3::ste::STE_1_S1COR.mask() | smmuv3::ste::STE_1_S1CSH.mask() |
    smmuv3::ste::STE_1_S1STALLD.mask() | smmuv3::ste::STE_1_EATS.mask();

}  // namespace nb::domains
