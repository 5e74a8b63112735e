// hw/smmuv3: the VMSAv8-64 translation table walker, shared by stage 1 and stage 2.
//
// Owns: the descriptor layout (facts 4.1), the geometry of a walk from (granule, start level,
// input size, output size) (facts 4.3, 4.4), permission checks, access-flag and dirty-state
// hardware updates (HTTU), and nested walks in which every stage-1 table address is an IPA
// translated by stage 2.
// Does not own: where a stage's configuration comes from (stream-table.h for S2, context-
// descriptor.h for S1), caching (tlb.h), or turning faults into records (smmuv3.c++).
//
// A walk returns its leaf or the fault as data (`Event` with id, s2, cls, ipa, fetchAddr,
// ttRnW filled); nothing a guest writes into a table can make it throw.

#pragma once

#include "hw/mem/phys-mem.h"
#include "hw/smmuv3/events.h"
#include <kj/one-of.h>
#include "util/bits.h"
#include <cstdint>

namespace nb::smmu {

namespace pte {
// Facts 4.1: 64-bit descriptor fields. Table-descriptor attributes (bits 59-63) are from DDI0487
// (VMSAv8-64 table descriptors).
constexpr Field TYPE = bits(1, 0);
constexpr uint64_t TYPE_BLOCK = 1;       // levels 0-2
constexpr uint64_t TYPE_TABLE = 3;       // levels 0-2
constexpr uint64_t TYPE_PAGE = 3;        // level 3
constexpr Field ATTRINDX = bits(4, 2);   // S1
constexpr Field S2_MEMATTR = bits(5, 2); // S2
constexpr Field AP1_UNPRIV = bit(6);     // S1 AP[1]
constexpr Field AP2_RDONLY = bit(7);     // S1 AP[2]
constexpr Field S2AP_READ = bit(6);      // S2AP[0]
constexpr Field S2AP_WRITE = bit(7);     // S2AP[1]
constexpr Field SH = bits(9, 8);
constexpr Field AF = bit(10);
constexpr Field NG = bit(11);            // S1
constexpr Field OA = bits(47, 12);
constexpr Field OA_51_48 = bits(15, 12); // 64K granule with 52-bit OA: PA[51:48] (facts 4.3)
constexpr Field DBM = bit(51);
constexpr Field CONTIG = bit(52);
constexpr Field PXN = bit(53);           // S1 (EL1&0 and EL2-E2H regimes)
constexpr Field UXN = bit(54);           // S1; the single XN of the EL2 regime
constexpr Field S2_XN = bit(54);         // S2 XN[1]; XN[0] (bit 53) needs FEAT_XNX: ignored
constexpr Field PXN_TABLE = bit(59);     // S1 table descriptors
constexpr Field UXN_TABLE = bit(60);
constexpr Field AP_TABLE_NO_EL0 = bit(61);   // APTable[0]
constexpr Field AP_TABLE_NO_WRITE = bit(62); // APTable[1]
constexpr Field NS_TABLE = bit(63);
}  // namespace pte

enum class Stage : uint8_t { S1, S2 };

enum class Granule : uint8_t {
  // The value is the page shift.
  G4K = 12,
  G16K = 14,
  G64K = 16,
};

constexpr unsigned pageShift(Granule g) { return unsigned(g); }
constexpr unsigned bitsPerLevel(Granule g) { return pageShift(g) - 3; }  // facts 4.3
constexpr unsigned levelShift(Granule g, unsigned level) {
  return (4 - level) * bitsPerLevel(g) + 3;  // facts 4.3: ARM_LPAE_LVL_SHIFT
}
constexpr unsigned s1StartLevel(Granule g, unsigned inputBits) {
  // Facts 4.3: levels = ceil((ias - pg_shift) / bits_per_level), start = 4 - levels.
  return 4 - (inputBits - pageShift(g) + bitsPerLevel(g) - 1) / bitsPerLevel(g);
}

struct StageConfig {
  // One stage's walk geometry and behaviour, decoded once from a CD (S1) or STE (S2).
  Stage stage = Stage::S1;
  Granule granule = Granule::G4K;
  uint8_t startLevel = 0;  // 0..3; for S2 after concatenation (facts 4.4)
  uint8_t inputBits = 48;  // 64 - TxSZ
  uint8_t outputBits = 48; // min(IPS or S2PS, IDR5.OAS)
  bool lpa = false;        // SMMU OAS is 52 bits: 64K descriptors carry PA[51:48] in [15:12]
  bool singlePrivilege = false;  // S1 of the EL2 regime without E2H: AP[1] ignored, XN = bit 54
  bool ha = false;         // hardware access-flag update (HTTU)
  bool hd = false;         // hardware dirty-state update (DBM); only with ha
  bool affd = false;       // access-flag faults disabled: AF=0 behaves as AF=1 without update
  uint64_t ttb = 0;        // table base (S1 nested: an IPA)

  unsigned startIndexBits() const { return inputBits - levelShift(granule, startLevel); }
  // Index bits at the start level: more than bitsPerLevel means concatenated tables (S2).
};

struct Access {
  // What a transaction wants (event RnW/InD/PnU, facts 3.2).
  bool write = false;
  bool priv = false;
  bool exec = false;  // instruction fetch; meaningful for reads only (a write is always data)
};

class Permissions {
  // What a leaf (or a combined nested leaf) allows, for both privileges, so an IOTLB entry can
  // answer any later access.
public:
  enum Bit : uint8_t {
    R_PRIV = 1, W_PRIV = 2, X_PRIV = 4, R_USER = 8, W_USER = 16, X_USER = 32,
    ALL = 63,
  };
  constexpr Permissions(uint8_t bits = 0) : bits(bits) {}
  constexpr bool allows(Access a) const {
    uint8_t shift = a.priv ? 0 : 3;
    uint8_t need = a.write ? W_PRIV : a.exec ? X_PRIV : R_PRIV;
    return (bits >> shift) & need;
  }
  constexpr Permissions operator&(Permissions other) const {
    return Permissions(bits & other.bits);
  }
  constexpr bool operator==(Permissions other) const { return bits == other.bits; }
  uint8_t bits;
};

struct Leaf {
  // A successful walk.
  uint64_t outputAddr;    // translated address (page base | offset)
  uint8_t level;          // level of the leaf descriptor
  uint8_t sizeLog2;       // log2 of the block/page size
  Permissions perms;      // as the descriptor stands after any HTTU update
  bool global;            // S1: nG == 0
};

struct WalkCounters {
  uint64_t stageWalks = 0;      // walk() calls, including nested S2 walks of table addresses
  uint64_t descriptorReads = 0; // descriptor loads from memory
  uint64_t httuUpdates = 0;     // successful AF/dirty compare-and-swap updates
};

using WalkOutcome = kj::OneOf<Leaf, Event>;

class Walker {
public:
  Walker(PhysMem& mem, WalkCounters& counters) : mem(mem), counters(counters) {}

  WalkOutcome walk(const StageConfig& stage, uint64_t inputAddr, Access access,
                   FaultClass cls = FaultClass::IN,
                   const StageConfig* tableStage2 = nullptr);
  // Walks one stage for `inputAddr`, which must already be within the stage's input range for
  // S1 (region selection and TBI are the caller's: smmuv3.c++); for S2 an IPA outside the
  // range is a stage-2 F_TRANSLATION.
  // `cls` is reported in stage-2 faults: why this S2 walk happens (CD fetch, S1 table fetch or
  // the final IPA). `tableStage2` (S1 only) makes the walk nested: every table address is an
  // IPA translated by that stage 2 (faults: S2=1, CLASS=TT).

  kj::OneOf<uint64_t, Event> translateIpa(const StageConfig& s2, uint64_t ipa, Access access,
                                          FaultClass cls);
  // A stage-2 translation of one address (CD fetch or table fetch in nested mode).

private:
  PhysMem& mem;
  WalkCounters& counters;
};

uint64_t descriptorOutputAddress(uint64_t desc, Granule granule, unsigned shift, bool lpa);
// The output address a table/block/page descriptor holds, aligned to 2^shift (facts 4.3
// output-address packing: with 64K and a 52-bit OA, PA[51:48] is in bits [15:12]).

Permissions s1Permissions(uint64_t desc, uint64_t tableAttrs, bool singlePrivilege);
// AP[2:1], PXN, UXN (facts 4.1) combined with the hierarchical APTable/PXNTable/UXNTable
// bits accumulated in `tableAttrs` (DDI0487 hierarchical permissions). An EL0-writable region
// is never executable at EL1 (DDI0487: implicit PXN).
Permissions s2Permissions(uint64_t desc);
// S2AP read/write and XN[1] (facts 4.1); the same for both privileges.

}  // namespace nb::smmu
