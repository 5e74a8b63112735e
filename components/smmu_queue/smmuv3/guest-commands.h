// components/smmu_queue/smmuv3: what a guest's commands become on the host, for each path.
//
// Owns: the conversion of raw guest commands exactly as Linux's arm_vsmmu_convert_user_cmd
// (facts 5.3: VMID forced, vSID -> SID, everything else EIO), the software VCMDQ's accepted
// subset (facts 5.3, tegra241_guest_vcmdq_supports_cmd), and the generic path's two halves:
// decoding a guest command into a hardware-neutral descriptor (counting what the descriptor
// cannot say) and re-encoding a descriptor into host commands.
// Does not own: queues, vIOMMU objects or their vDEVICE tables (viommu.c++ passes a lookup).

#pragma once

#include "components/smmu_queue/smmuv3/commands.h"
#include "interfaces/smmu-queue.capnp.h"
#include <kj/function.h>
#include <kj/one-of.h>
#include <kj/string.h>

namespace nb::smmuq {

// vSID -> physical SID of the vIOMMU's vDEVICEs; null when the vSID has none.
using VsidLookup = kj::Function<kj::Maybe<uint32_t>(uint64_t vsid)>;

struct Refusal {
  // Why a guest entry was refused: the errno and a message naming the command.
  rpc::Errno errno_;
  kj::String message;
};

struct GuestRules {
  // What the physical SMMU implements (its ID registers), which decides the fields a guest
  // command may set: the vSMMU advertises the same IDR values (facts 5.3 hw_info).
  bool ril = true;          // IDR3.RIL: NUM/SCALE/TTL/TG
  bool ats = false;         // IDR0.ATS: ATC_INV
  bool asid16 = true;       // IDR0.ASID16: ASID[15:8]
  unsigned ssidBits = 20;   // IDR1.SSIDSIZE: SSV/SSID/Global
};

kj::Maybe<Refusal> validateGuest(Command guest, const GuestRules& rules);
// EIO for an entry the SMMU would refuse with CERROR_ILL, before it reaches the shared queue
// (Linux's per-opcode validation in the vIOMMU, facts 5.3 "newer code"; IHI 0070 §4.1.3): a
// bit outside the opcode's fields (per the guest-visible opcodes: NSNH_ALL, NH_ALL, NH_ASID,
// NH_VA, NH_VAA, ATC_INV, CFGI_CD, CFGI_CD_ALL, SYNC), ASID[15:8] without ASID16, range fields
// without RIL, a reserved range encoding (§4.4.1: NUM/SCALE/TTL with TG = 0; TG != 0 with
// NUM = SCALE = TTL = 0; 16K with TTL = 1), ATC_INV without ATS or with SIZE > 52, and
// SSV/SSID/Global without substreams. Other opcodes are left to the path's own table.

kj::OneOf<Command, Refusal> convertNative(Command guest, uint16_t vmid, VsidLookup& lookup,
                                          const GuestRules& rules);
// One entry of IOMMU_HWPT_INVALIDATE (ARM_SMMUV3): the command to forward, or EIO.

kj::OneOf<Command, Refusal> convertVcmdq(Command guest, uint16_t vmid, VsidLookup& lookup,
                                         const GuestRules& rules);
// One entry of a software VCMDQ: only TLBI_NH_ASID, TLBI_NH_VA, ATC_INV and CMD_SYNC are
// accepted (a SYNC is returned unchanged: it marks where the processor must wait), each
// validated as validateGuest does (the refusal becomes the VCMDQ's CERROR_ILL).

struct GenericLoss {
  // What decoding into GenericInvalidation widened (stats: lost_precision_*).
  uint64_t ttl = 0;       // a TTL level hint dropped
  uint64_t vaa = 0;       // TLBI_NH_VAA (a VA in every ASID) widened to the whole VMID
  uint64_t atcSsid = 0;   // ATC_INV of one SubstreamID widened to every SubstreamID
  uint64_t cdSsid = 0;    // CFGI_CD of one SubstreamID widened to CFGI_CD_ALL
};

kj::Maybe<Refusal> decodeGeneric(Command guest, rpc::GenericInvalidation::Builder out,
                                 GenericLoss& loss, const GuestRules& rules);
// The guest side of the generic path: refuses what native refuses (EIO), except that vSIDs
// are carried as they are (the host side resolves them).

kj::Maybe<Refusal> encodeGeneric(rpc::GenericInvalidation::Reader descriptor, uint16_t vmid,
                                 bool ril, VsidLookup& lookup, kj::Vector<Command>& out);
// The host side of the generic path: the SMMUv3 commands for one descriptor. EINVAL for a
// malformed descriptor (granule not 4K/16K/64K, misaligned or empty range), EIO for a vSID
// without a vDEVICE.

}  // namespace nb::smmuq
