// hw/smmuv3: Features validation and the ID registers that advertise them (facts 1.8).

#include "hw/smmuv3/features.h"
#include "hw/smmuv3/registers.h"
#include <kj/debug.h>

namespace nb::smmu {

namespace {

// The OAS/IPS/PS encoding (facts 1.8 IDR5.OAS, facts 4.5 "IPS from oas").
constexpr auto& ADDRESS_SIZES = ADDRESS_SIZE_BITS;

// IIDR: nestbed's model has no JEP106 implementer code; all fields read as zero.
constexpr uint32_t NESTBED_IIDR = 0;
// AIDR: SMMUv3.2 (range invalidation, facts 1.4, is a v3.2 feature).
constexpr uint32_t ARCH_MINOR = 2;

}  // namespace

uint8_t encodeAddressSize(uint8_t bitsValue) {
  for (uint8_t i = 0; i < kj::size(ADDRESS_SIZES); i++) {
    if (ADDRESS_SIZES[i] == bitsValue) return i;
  }
  KJ_FAIL_REQUIRE("address size has no OAS/IPS/PS encoding", bitsValue);
}

uint8_t decodeAddressSize(uint8_t encoding, uint8_t cap) {
  if (encoding >= kj::size(ADDRESS_SIZES)) return cap;
  return kj::min(ADDRESS_SIZES[encoding], cap);
}

void validateFeatures(const Features& features) {
  KJ_REQUIRE(features.stage1 || features.stage2, "an SMMU implements at least one stage");
  KJ_REQUIRE(features.gran4k || features.gran16k || features.gran64k,
             "an SMMU implements at least one granule");
  encodeAddressSize(features.oas);
  KJ_REQUIRE(features.oas != 52 || features.gran64k,
             "52-bit OAS needs the 64K granule (facts 4.3)");
  KJ_REQUIRE(features.sidBits <= 32, features.sidBits);
  KJ_REQUIRE(features.ssidBits <= 20, features.ssidBits);
  KJ_REQUIRE(features.cmdqLog2Max <= 19, features.cmdqLog2Max);
  KJ_REQUIRE(features.evtqLog2Max <= 19, features.evtqLog2Max);
}

IdRegisters makeIdRegisters(const Features& f) {
  validateFeatures(f);
  IdRegisters r{};

  uint64_t idr0 = 0;
  idr0 = IDR0::S2P.set(idr0, f.stage2);
  idr0 = IDR0::S1P.set(idr0, f.stage1);
  idr0 = IDR0::TTF.set(idr0, IDR0::TTF_AARCH64);
  idr0 = IDR0::COHACC.set(idr0, 1);  // one coherent physical memory
  idr0 = IDR0::HTTU.set(idr0, uint64_t(f.httu));
  idr0 = IDR0::HYP.set(idr0, f.hyp);
  idr0 = IDR0::ATS.set(idr0, f.ats);
  idr0 = IDR0::ASID16.set(idr0, f.asid16);
  idr0 = IDR0::MSI.set(idr0, f.msi);
  idr0 = IDR0::SEV.set(idr0, f.sev);
  idr0 = IDR0::VMID16.set(idr0, f.vmid16);
  idr0 = IDR0::CD2L.set(idr0, f.cd2l);
  idr0 = IDR0::TTENDIAN.set(idr0, IDR0::TTENDIAN_LE);
  idr0 = IDR0::STALL_MODEL.set(idr0, IDR0::STALL_MODEL_NONE);  // stalls are not modelled
  idr0 = IDR0::TERM_MODEL.set(idr0, f.termModelAbort);
  idr0 = IDR0::ST_LVL.set(idr0, f.twoLevelStreamTable ? 1 : 0);
  r.idr[0] = uint32_t(idr0);

  uint64_t idr1 = 0;
  idr1 = IDR1::SIDSIZE.set(idr1, f.sidBits);
  idr1 = IDR1::SSIDSIZE.set(idr1, f.ssidBits);
  idr1 = IDR1::EVTQS.set(idr1, f.evtqLog2Max);
  idr1 = IDR1::CMDQS.set(idr1, f.cmdqLog2Max);
  idr1 = IDR1::ATTR_TYPES_OVR.set(idr1, f.attrTypesOvr);
  r.idr[1] = uint32_t(idr1);

  r.idr[2] = 0;
  r.idr[3] = uint32_t(IDR3::RIL.set(0, f.ril));
  r.idr[4] = 0;

  uint64_t idr5 = 0;
  idr5 = IDR5::OAS.set(idr5, encodeAddressSize(f.oas));
  idr5 = IDR5::GRAN4K.set(idr5, f.gran4k);
  idr5 = IDR5::GRAN16K.set(idr5, f.gran16k);
  idr5 = IDR5::GRAN64K.set(idr5, f.gran64k);
  r.idr[5] = uint32_t(idr5);

  r.iidr = NESTBED_IIDR;
  r.aidr = uint32_t(AIDR::ARCH_MINOR_REV.set(0, ARCH_MINOR));
  return r;
}

}  // namespace nb::smmu
