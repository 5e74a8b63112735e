#include "components/smmu_queue/smmuv3/guest-commands.h"

#include "util/smmuv3/commands.h"

namespace nb::smmuq {

namespace {

namespace cmd = smmuv3::cmd;
using smmuv3::Opcode;

constexpr uint64_t PAGE_4K = 4096;

Refusal refuse(rpc::Errno errno_, kj::String message) { return Refusal{errno_, kj::mv(message)}; }

kj::String describe(Command c) {
  return kj::str("command 0x", kj::hex(opcodeOf(c)), " (dw0 0x", kj::hex(c.dw0), ", dw1 0x",
                 kj::hex(c.dw1), ")");
}

Refusal unsupported(Command c, kj::StringPtr path) {
  return refuse(rpc::Errno::E_IO, kj::str(describe(c), " is not accepted from a guest on the ",
                                           path, " path"));
}

// Replaces the vSID in a command's SID field (dw0[63:32] for ATC_INV, CFGI_CD, CFGI_CD_ALL).
kj::OneOf<Command, Refusal> withPhysicalSid(Command c, VsidLookup& lookup) {
  uint64_t vsid = cmd::CFGI_0_SID.get(c.dw0);
  KJ_IF_MAYBE(sid, lookup(vsid)) {
    c.dw0 = cmd::CFGI_0_SID.with(c.dw0, *sid);
    return c;
  }
  return refuse(rpc::Errno::E_IO,
                kj::str(describe(c), ": vSID 0x", kj::hex(vsid), " has no vDEVICE"));
}

Command withVmid(Command c, uint16_t vmid) {
  c.dw0 = cmd::TLBI_0_VMID.with(c.dw0, vmid);
  return c;
}

uint64_t granuleOfTg(uint64_t tg) { return tg == 0 ? 0 : uint64_t(1) << (12 + 2 * (tg - 1)); }

constexpr uint64_t m(Field f) { return f.mask(); }

Refusal illegal(Command c, kj::StringPtr why) {
  return refuse(rpc::Errno::E_IO, kj::str(describe(c), ": ", why,
                                           " (the SMMU would refuse it with CERROR_ILL)"));
}

}  // namespace

kj::Maybe<Refusal> validateGuest(Command c, const GuestRules& rules) {
  // IHI 0070 §4.1.3: reserved fields are RES0; §4.4.1 range encodings. Field positions: facts
  // 1.3. The VMID of a TLBI is allowed at any value: it is overwritten.
  const uint64_t asidField = rules.asid16 ? m(cmd::TLBI_0_ASID)
                                          : uint64_t(0xff) << cmd::TLBI_0_ASID.lo;
  const uint64_t ssidFields =
      rules.ssidBits > 0 ? m(cmd::CMD_0_SSV) | m(cmd::ATC_0_SSID) | m(cmd::ATC_0_GLOBAL) : 0;
  uint64_t allowed0 = m(cmd::CMD_0_OP), allowed1 = 0;
  bool ranged = false;
  switch (Opcode(opcodeOf(c))) {
    case Opcode::TLBI_NSNH_ALL:
      break;
    case Opcode::TLBI_NH_ALL:
      allowed0 |= m(cmd::TLBI_0_VMID);
      break;
    case Opcode::TLBI_NH_ASID:
      allowed0 |= m(cmd::TLBI_0_VMID) | asidField;
      break;
    case Opcode::TLBI_NH_VA:
      allowed0 |= asidField;
      KJ_FALLTHROUGH;
    case Opcode::TLBI_NH_VAA:
      allowed0 |= m(cmd::TLBI_0_VMID);
      allowed1 |= m(cmd::TLBI_1_LEAF) | m(cmd::TLBI_1_VA);
      ranged = rules.ril;
      if (ranged) {
        allowed0 |= m(cmd::TLBI_0_NUM) | m(cmd::TLBI_0_SCALE);
        allowed1 |= m(cmd::TLBI_1_TTL) | m(cmd::TLBI_1_TG);
      }
      break;
    case Opcode::ATC_INV:
      if (!rules.ats) return illegal(c, "ATC_INV on an SMMU without ATS");
      if (cmd::ATC_1_SIZE.get(c.dw1) > cmd::ATC_INV_SIZE_ALL) {
        return illegal(c, "ATC_INV SIZE above 52 is reserved");
      }
      allowed0 |= ssidFields | m(cmd::ATC_0_SID);
      allowed1 |= m(cmd::ATC_1_SIZE) | m(cmd::ATC_1_ADDR);
      break;
    case Opcode::CFGI_CD:
      // CFGI_CD has an SSID but no SSV.
      if (rules.ssidBits > 0) allowed0 |= m(cmd::CFGI_0_SSID);
      allowed1 |= m(cmd::CFGI_1_LEAF);
      KJ_FALLTHROUGH;
    case Opcode::CFGI_CD_ALL:
      allowed0 |= m(cmd::CFGI_0_SID);
      break;
    case Opcode::SYNC:
      if (cmd::SYNC_0_CS.get(c.dw0) == 3) return illegal(c, "SYNC CS = 3 is reserved");
      allowed0 |= m(cmd::SYNC_0_CS) | m(cmd::SYNC_0_MSH) | m(cmd::SYNC_0_MSIATTR) |
                  m(cmd::SYNC_0_MSIDATA);
      allowed1 |= m(cmd::SYNC_1_MSIADDR);
      break;
    default:
      return nullptr;  // not a guest's: the path's own table refuses it
  }
  if ((c.dw0 & ~allowed0) != 0 || (c.dw1 & ~allowed1) != 0) {
    return illegal(c, kj::str("reserved bits set (dw0 0x", kj::hex(c.dw0 & ~allowed0),
                              ", dw1 0x", kj::hex(c.dw1 & ~allowed1), ")"));
  }
  if (ranged) {
    const uint64_t tg = cmd::TLBI_1_TG.get(c.dw1), ttl = cmd::TLBI_1_TTL.get(c.dw1);
    const bool numOrScale = (c.dw0 & (m(cmd::TLBI_0_NUM) | m(cmd::TLBI_0_SCALE))) != 0;
    if (tg == 0 && (numOrScale || ttl != 0)) {
      return illegal(c, "NUM, SCALE and TTL are RES0 when TG = 0");
    }
    if (tg != 0 && !numOrScale && ttl == 0) {
      return illegal(c, "TG != 0 with NUM = SCALE = TTL = 0 is a reserved range encoding");
    }
    if (tg == cmd::TLBI_TG_16K && ttl == 1) {
      return illegal(c, "TTL = 1 with the 16K granule needs IDR5.DS");
    }
  }
  return nullptr;
}

kj::OneOf<Command, Refusal> convertNative(Command guest, uint16_t vmid, VsidLookup& lookup,
                                          const GuestRules& rules) {
  KJ_IF_MAYBE(r, validateGuest(guest, rules)) { return kj::mv(*r); }
  switch (Opcode(opcodeOf(guest))) {
    case Opcode::TLBI_NSNH_ALL: {
      // Rewritten into TLBI_NH_ALL of the vIOMMU's VMID; dw1 cleared.
      Command c{cmd::CMD_0_OP.with(guest.dw0, uint8_t(Opcode::TLBI_NH_ALL)), 0};
      return withVmid(c, vmid);
    }
    case Opcode::TLBI_NH_VA:
    case Opcode::TLBI_NH_VAA:
    case Opcode::TLBI_NH_ALL:
    case Opcode::TLBI_NH_ASID:
      return withVmid(guest, vmid);
    case Opcode::ATC_INV:
    case Opcode::CFGI_CD:
    case Opcode::CFGI_CD_ALL:
      return withPhysicalSid(guest, lookup);
    default:
      return unsupported(guest, "native");
  }
}

kj::OneOf<Command, Refusal> convertVcmdq(Command guest, uint16_t vmid, VsidLookup& lookup,
                                         const GuestRules& rules) {
  KJ_IF_MAYBE(r, validateGuest(guest, rules)) { return kj::mv(*r); }
  switch (Opcode(opcodeOf(guest))) {
    case Opcode::TLBI_NH_ASID:
    case Opcode::TLBI_NH_VA:
      return withVmid(guest, vmid);
    case Opcode::ATC_INV:
      return withPhysicalSid(guest, lookup);
    case Opcode::SYNC:
      return guest;
    default:
      return unsupported(guest, "sw_vcmdq");
  }
}

kj::Maybe<Refusal> decodeGeneric(Command guest, rpc::GenericInvalidation::Builder out,
                                 GenericLoss& loss, const GuestRules& rules) {
  KJ_IF_MAYBE(r, validateGuest(guest, rules)) { return kj::mv(*r); }
  switch (Opcode(opcodeOf(guest))) {
    case Opcode::TLBI_NSNH_ALL:
    case Opcode::TLBI_NH_ALL:
      out.setCache(rpc::GenericCache::IOTLB);
      out.setScope(rpc::GenericScope::ALL);
      return nullptr;
    case Opcode::TLBI_NH_VAA:
      // A VA in every ASID: the descriptor's ranges belong to one ASID.
      loss.vaa++;
      out.setCache(rpc::GenericCache::IOTLB);
      out.setScope(rpc::GenericScope::ALL);
      return nullptr;
    case Opcode::TLBI_NH_ASID:
      out.setCache(rpc::GenericCache::IOTLB);
      out.setScope(rpc::GenericScope::ASID);
      out.setAsid(cmd::TLBI_0_ASID.get(guest.dw0));
      return nullptr;
    case Opcode::TLBI_NH_VA: {
      out.setCache(rpc::GenericCache::IOTLB);
      out.setScope(rpc::GenericScope::RANGE);
      out.setAsid(cmd::TLBI_0_ASID.get(guest.dw0));
      out.setLeaf(cmd::TLBI_1_LEAF.test(guest.dw1));
      uint64_t addr = guest.dw1 & cmd::TLBI_1_VA.mask();
      uint64_t granule = granuleOfTg(cmd::TLBI_1_TG.get(guest.dw1));
      if (granule == 0) {
        // Not a range: every entry holding this VA. A one-page range says the same.
        out.setAddr(addr);
        out.setSize(PAGE_4K);
        out.setGranule(PAGE_4K);
      } else {
        uint64_t pages = (cmd::TLBI_0_NUM.get(guest.dw0) + 1) << cmd::TLBI_0_SCALE.get(guest.dw0);
        out.setAddr(addr);
        out.setSize(pages * granule);
        out.setGranule(granule);
      }
      if (cmd::TLBI_1_TTL.get(guest.dw1) != 0) loss.ttl++;
      return nullptr;
    }
    case Opcode::ATC_INV: {
      out.setCache(rpc::GenericCache::DEVICE_TLB);
      out.setVsid(cmd::ATC_0_SID.get(guest.dw0));
      if (cmd::CMD_0_SSV.test(guest.dw0)) loss.atcSsid++;
      uint64_t size = cmd::ATC_1_SIZE.get(guest.dw1);
      if (size >= cmd::ATC_INV_SIZE_ALL) {
        out.setScope(rpc::GenericScope::ALL);
      } else {
        out.setScope(rpc::GenericScope::RANGE);
        out.setAddr(guest.dw1 & cmd::ATC_1_ADDR.mask());
        out.setSize(PAGE_4K << size);
        out.setGranule(PAGE_4K);
      }
      return nullptr;
    }
    case Opcode::CFGI_CD:
      loss.cdSsid++;
      KJ_FALLTHROUGH;
    case Opcode::CFGI_CD_ALL:
      out.setCache(rpc::GenericCache::CONTEXT);
      out.setScope(rpc::GenericScope::ALL);
      out.setVsid(cmd::CFGI_0_SID.get(guest.dw0));
      return nullptr;
    default:
      return unsupported(guest, "generic");
  }
}

kj::Maybe<Refusal> encodeGeneric(rpc::GenericInvalidation::Reader d, uint16_t vmid, bool ril,
                                 VsidLookup& lookup, kj::Vector<Command>& out) {
  auto physicalSid = [&](kj::StringPtr what) -> kj::OneOf<uint32_t, Refusal> {
    KJ_IF_MAYBE(sid, lookup(d.getVsid())) { return *sid; }
    return refuse(rpc::Errno::E_IO,
                  kj::str(what, " invalidation: vSID 0x", kj::hex(d.getVsid()), " has no vDEVICE"));
  };
  auto checkRange = [&](kj::StringPtr what) -> kj::Maybe<Refusal> {
    uint64_t g = d.getGranule();
    if (g != 4096 && g != 16384 && g != 65536) {
      return refuse(rpc::Errno::E_INVAL,
                    kj::str(what, " range: granule ", g, " is not 4K, 16K or 64K"));
    }
    if (d.getSize() == 0 || !isAligned(d.getAddr(), g) || !isAligned(d.getSize(), g) ||
        d.getAddr() + d.getSize() < d.getAddr()) {
      return refuse(rpc::Errno::E_INVAL,
                    kj::str(what, " range [0x", kj::hex(d.getAddr()), ", +0x", kj::hex(d.getSize()),
                            ") is empty, wraps or is not aligned to its granule ", g));
    }
    return nullptr;
  };

  switch (d.getCache()) {
    case rpc::GenericCache::IOTLB:
      switch (d.getScope()) {
        case rpc::GenericScope::ALL:
          out.add(build::tlbiNhAll(vmid));
          return nullptr;
        case rpc::GenericScope::ASID:
        case rpc::GenericScope::RANGE: {
          if (d.getAsid() > 0xffff) {
            return refuse(rpc::Errno::E_INVAL, kj::str("iotlb invalidation: ASID ", d.getAsid(),
                                                      " is wider than 16 bits"));
          }
          uint16_t asid = d.getAsid();
          if (d.getScope() == rpc::GenericScope::ASID) {
            out.add(build::tlbiNhAsid(asid, vmid));
            return nullptr;
          }
          KJ_IF_MAYBE(r, checkRange("iotlb")) { return kj::mv(*r); }
          TlbiRange range;
          range.stage = TlbiRange::Stage::NH_VA;
          range.asid = asid;
          range.vmid = vmid;
          range.addr = d.getAddr();
          range.size = d.getSize();
          range.granule = 0;  // the descriptor has no level hint
          range.pageSize = d.getGranule();
          range.leaf = d.getLeaf();
          KJ_IF_MAYBE(why, checkTlbiRange(range)) {
            return refuse(rpc::Errno::E_INVAL, kj::str("iotlb range: ", *why));
          }
          buildTlbiRange(range, ril, out);
          return nullptr;
        }
      }
      break;
    case rpc::GenericCache::DEVICE_TLB: {
      auto sid = physicalSid("deviceTlb");
      if (sid.is<Refusal>()) return kj::mv(sid.get<Refusal>());
      switch (d.getScope()) {
        case rpc::GenericScope::ALL:
          out.add(build::atcInv(sid.get<uint32_t>(), false, 0, 0, 0));
          return nullptr;
        case rpc::GenericScope::RANGE:
          KJ_IF_MAYBE(r, checkRange("deviceTlb")) { return kj::mv(*r); }
          out.add(build::atcInv(sid.get<uint32_t>(), false, 0, d.getAddr(), d.getSize()));
          return nullptr;
        case rpc::GenericScope::ASID:
          return refuse(rpc::Errno::E_INVAL, kj::str("deviceTlb invalidation has no ASID scope"));
      }
      break;
    }
    case rpc::GenericCache::CONTEXT: {
      auto sid = physicalSid("context");
      if (sid.is<Refusal>()) return kj::mv(sid.get<Refusal>());
      if (d.getScope() != rpc::GenericScope::ALL) {
        return refuse(rpc::Errno::E_INVAL, kj::str("context invalidation takes scope `all` only"));
      }
      out.add(build::cfgiCdAll(sid.get<uint32_t>()));
      return nullptr;
    }
  }
  return refuse(rpc::Errno::E_INVAL, kj::str("unknown generic cache or scope (",
                                            uint16_t(d.getCache()), ", ",
                                            uint16_t(d.getScope()), ")"));
}

}  // namespace nb::smmuq
