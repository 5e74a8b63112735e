// hw/smmuv3: what one modelled SMMUv3 instance implements.
//
// Owns: the `Features` value a composition chooses per SMMU, its validation, and the ID
// register values (IDR0..IDR5, IIDR, AIDR) that advertise it (facts 1.8).
// Does not own: the register file that serves these values (registers.h), nor any behaviour
// the features gate (each module checks `Features` where the behaviour lives).

#pragma once

#include <cstdint>

namespace nb::smmu {

enum class Httu : uint8_t {
  // Hardware translation-table update support; values are the IDR0.HTTU encoding (facts 1.8).
  NONE = 0,
  ACCESS = 1,        // access flag only
  ACCESS_DIRTY = 2,  // access flag and dirty state (DBM)
};

struct Features {
  bool stage1 = true;               // IDR0.S1P
  bool stage2 = true;               // IDR0.S2P
  bool ril = true;                  // IDR3.RIL: range invalidation (TG/NUM/SCALE/TTL), facts 1.4
  Httu httu = Httu::ACCESS_DIRTY;   // IDR0.HTTU
  bool ats = false;                 // IDR0.ATS: gates CMD_ATC_INV and STE.EATS
  bool hyp = false;                 // IDR0.HYP: gates CMD_TLBI_EL2_* and STE.STRW=EL2, CR2.E2H
  bool termModelAbort = false;      // IDR0.TERM_MODEL: 1 = terminated transactions always abort;
                                    // 0 = CD.A chooses abort or RAZ/WI (IHI 0070 §3.12.2)
  uint8_t sidBits = 16;             // IDR1.SIDSIZE, 0..32
  uint8_t ssidBits = 20;            // IDR1.SSIDSIZE, 0..20
  uint8_t oas = 48;                 // IDR5.OAS in bits: 32, 36, 40, 42, 44, 48 or 52 (52 needs 64K)
  bool gran4k = true;               // IDR5.GRAN4K
  bool gran16k = true;              // IDR5.GRAN16K
  bool gran64k = true;              // IDR5.GRAN64K
  bool asid16 = true;               // IDR0.ASID16; without it ASIDs are 8 bits
  bool vmid16 = true;               // IDR0.VMID16; without it VMIDs are 8 bits
  bool twoLevelStreamTable = true;  // IDR0.ST_LVL = 1
  bool cd2l = true;                 // IDR0.CD2L: two-level CD tables
  uint8_t cmdqLog2Max = 19;         // IDR1.CMDQS, at most 19
  uint8_t evtqLog2Max = 19;         // IDR1.EVTQS, at most 19
  bool attrTypesOvr = true;         // IDR1.ATTR_TYPES_OVR
  bool msi = true;                  // IDR0.MSI: CMD_SYNC CS=IRQ writes MSIDATA to MSIADDR
  bool sev = true;                  // IDR0.SEV
  uint32_t iotlbEntries = 4096;     // IOTLB capacity in leaf entries; 0 = no IOTLB
  uint32_t configCacheEntries = 1024;  // STE and CD cache capacity (each); 0 = no config cache

  constexpr bool nesting() const { return stage1 && stage2; }
  // FEAT_NESTING = S1P && S2P (facts 1.8, arm_smmu_device_hw_probe).

  constexpr bool granuleSupported(unsigned pageShift) const {
    return (pageShift == 12 && gran4k) || (pageShift == 14 && gran16k) ||
           (pageShift == 16 && gran64k);
  }
  constexpr uint32_t asidMask() const { return asid16 ? 0xffff : 0xff; }
  constexpr uint32_t vmidMask() const { return vmid16 ? 0xffff : 0xff; }
  constexpr bool httuAccess() const { return httu != Httu::NONE; }
  constexpr bool httuDirty() const { return httu == Httu::ACCESS_DIRTY; }
};

void validateFeatures(const Features& features);
// Throws (KJ_REQUIRE: the composition's broken contract) on an impossible combination, e.g. an
// OAS the architecture has no encoding for, or no granule at all.

struct IdRegisters {
  uint32_t idr[6];
  uint32_t iidr;
  uint32_t aidr;
};

IdRegisters makeIdRegisters(const Features& features);
// The ID register values advertising `features` (facts 1.8).

uint8_t encodeAddressSize(uint8_t bits);
// 32->0, 36->1, 40->2, 42->3, 44->4, 48->5, 52->6: the OAS/IPS/PS encoding (facts 1.8, 4.5).
// Requires a size with an encoding.
uint8_t decodeAddressSize(uint8_t encoding, uint8_t cap);
// The inverse, capped at `cap` bits: an encoding above the implemented OAS (or a reserved one)
// behaves as the OAS (IHI 0070: "values greater than OAS are treated as OAS").

}  // namespace nb::smmu
