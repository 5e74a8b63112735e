// Scenario commands built by name. See commands.h.

#include "system/script/commands.h"

#include "util/smmuv3/commands.h"
#include "util/smmuv3/cd.h"
#include "util/smmuv3/ste.h"

#include <capnp/dynamic.h>
#include <string.h>

namespace nb {

namespace {

using namespace smmuv3::cmd;
using smmuv3::Opcode;

// Every command's StreamID field (dw0[63:32], facts 1.3), for the ones commands.h names no
// field for (CMD_STALL_TERM).
constexpr Field CMD_0_SID = bits(63, 32);

class Encoder {
public:
  explicit Encoder(kj::StringPtr name) : name_(name) {}

  void op(Opcode op) { dw0_ = CMD_0_OP.with(dw0_, uint64_t(op)); }
  void put0(Field f, uint64_t value, kj::StringPtr field) { put(dw0_, f, value, field); }
  void put1(Field f, uint64_t value, kj::StringPtr field) { put(dw1_, f, value, field); }
  // An address in a field of its bits [hi:shift] (the low `shift` bits must be 0).
  void address(Field f, uint64_t addr, unsigned shift, kj::StringPtr field) {
    if (addr & ((uint64_t(1) << shift) - 1)) {
      fail(field, kj::str("0x", kj::hex(addr), " is not ", shift == 12 ? "4 KiB" : "4-byte", " aligned"));
      return;
    }
    if (!f.fits(addr >> shift)) {
      fail(field, kj::str("0x", kj::hex(addr), " is beyond bit ", f.hi));
      return;
    }
    put(dw1_, f, addr >> shift, field);
  }

  void address0(Field f, uint64_t addr, kj::StringPtr field) {
    // An address in dw0 held in place (its low bits below the field are 0).
    if (addr & ((uint64_t(1) << f.lo) - 1)) {
      fail(field, kj::str("0x", kj::hex(addr), " is not ", uint64_t(1) << f.lo, "-byte aligned"));
    } else if (addr & ~f.mask()) {
      fail(field, kj::str("0x", kj::hex(addr), " is beyond bit ", f.hi));
    } else {
      dw0_ |= addr;
    }
  }

  kj::OneOf<CommandWords, kj::String> result() {
    KJ_IF_MAYBE(e, error_) { return kj::mv(*e); }
    return CommandWords{dw0_, dw1_};
  }

private:
  void put(uint64_t& word, Field f, uint64_t value, kj::StringPtr field) {
    if (!f.fits(value)) {
      fail(field, kj::str(value, " does not fit in ", f.width(), " bits"));
      return;
    }
    word = f.with(word, value);
  }
  void fail(kj::StringPtr field, kj::String message) {
    if (error_ == nullptr) error_ = kj::str(name_, ".", field, ": ", message);
  }

  kj::StringPtr name_;
  uint64_t dw0_ = 0, dw1_ = 0;
  kj::Maybe<kj::String> error_;
};

void stream(Encoder& e, Field sid, Field ssid, uint32_t sidValue, bool ssv, uint32_t ssidValue) {
  e.put0(sid, sidValue, "sid");
  e.put0(CMD_0_SSV, ssv, "ssv");
  e.put0(ssid, ssidValue, "ssid");
}

void tlbi(Encoder& e, Opcode op, rpc::CmdTlbi::Reader t) {
  e.op(op);
  e.put0(TLBI_0_ASID, t.getAsid(), "asid");
  e.put0(TLBI_0_VMID, t.getVmid(), "vmid");
  e.put0(TLBI_0_NUM, t.getNum(), "num");
  e.put0(TLBI_0_SCALE, t.getScale(), "scale");
  e.put1(TLBI_1_LEAF, t.getLeaf(), "leaf");
  e.put1(TLBI_1_TTL, t.getTtl(), "ttl");
  e.put1(TLBI_1_TG, t.getTg(), "tg");
  e.address(op == Opcode::TLBI_S2_IPA ? TLBI_1_IPA : TLBI_1_VA, t.getAddr(), 12, "addr");
}

}  // namespace

kj::OneOf<CommandWords, kj::String> encodeCommand(rpc::RawCommand::Reader c) {
  using C = rpc::RawCommand;
  if (c.which() == C::RAW) return CommandWords{c.getDw0(), c.getDw1()};
  if (c.getDw0() != 0 || c.getDw1() != 0) {
    return kj::str("a command is raw words or built by name, not both (dw0/dw1 given)");
  }
  capnp::DynamicStruct::Reader dynamic = capnp::toDynamic(c);
  Encoder e(KJ_ASSERT_NONNULL(dynamic.which()).getProto().getName());
  switch (c.which()) {
    case C::RAW:
      break;
    case C::PREFETCH_CONFIG: {
      auto s = c.getPrefetchConfig();
      e.op(Opcode::PREFETCH_CONFIG);
      stream(e, PREFETCH_0_SID, PREFETCH_0_SSID, s.getSid(), s.getSsv(), s.getSsid());
      break;
    }
    case C::PREFETCH_ADDR: {
      auto s = c.getPrefetchAddr();
      e.op(Opcode::PREFETCH_ADDR);
      stream(e, PREFETCH_0_SID, PREFETCH_0_SSID, s.getSid(), s.getSsv(), s.getSsid());
      e.put1(PREFETCH_1_SIZE, s.getSize(), "size");
      e.address(PREFETCH_1_ADDR, s.getAddr(), 12, "addr");
      break;
    }
    case C::CFGI_STE: {
      auto s = c.getCfgiSte();
      e.op(Opcode::CFGI_STE);
      e.put0(CFGI_0_SID, s.getSid(), "sid");
      e.put0(CFGI_0_SSID, s.getSsid(), "ssid");   // not CFGI_STE's: reserved when set
      e.put1(CFGI_1_LEAF, s.getLeaf(), "leaf");
      break;
    }
    case C::CFGI_STE_RANGE: {
      auto s = c.getCfgiSteRange();
      e.op(Opcode::CFGI_STE_RANGE);
      e.put0(CFGI_0_SID, s.getSid(), "sid");
      e.put1(CFGI_1_RANGE, s.getRange(), "range");
      break;
    }
    case C::CFGI_ALL:
      e.op(Opcode::CFGI_STE_RANGE);
      e.put1(CFGI_1_RANGE, CFGI_RANGE_ALL, "range");
      break;
    case C::CFGI_CD: {
      auto s = c.getCfgiCd();
      e.op(Opcode::CFGI_CD);
      e.put0(CFGI_0_SID, s.getSid(), "sid");
      e.put0(CFGI_0_SSID, s.getSsid(), "ssid");
      e.put1(CFGI_1_LEAF, s.getLeaf(), "leaf");
      break;
    }
    case C::CFGI_CD_ALL: {
      auto s = c.getCfgiCdAll();
      e.op(Opcode::CFGI_CD_ALL);
      stream(e, CFGI_0_SID, CFGI_0_SSID, s.getSid(), s.getSsv(), s.getSsid());
      break;
    }
    case C::CFGI_VMS_PIDM: e.op(Opcode::CFGI_VMS_PIDM); break;
    case C::TLBI_NH_ALL: tlbi(e, Opcode::TLBI_NH_ALL, c.getTlbiNhAll()); break;
    case C::TLBI_NH_ASID: tlbi(e, Opcode::TLBI_NH_ASID, c.getTlbiNhAsid()); break;
    case C::TLBI_NH_VA: tlbi(e, Opcode::TLBI_NH_VA, c.getTlbiNhVa()); break;
    case C::TLBI_NH_VAA: tlbi(e, Opcode::TLBI_NH_VAA, c.getTlbiNhVaa()); break;
    case C::TLBI_EL3_ALL: e.op(Opcode::TLBI_EL3_ALL); break;
    case C::TLBI_EL3_VA: tlbi(e, Opcode::TLBI_EL3_VA, c.getTlbiEl3Va()); break;
    case C::TLBI_EL2_ALL: e.op(Opcode::TLBI_EL2_ALL); break;
    case C::TLBI_EL2_ASID: tlbi(e, Opcode::TLBI_EL2_ASID, c.getTlbiEl2Asid()); break;
    case C::TLBI_EL2_VA: tlbi(e, Opcode::TLBI_EL2_VA, c.getTlbiEl2Va()); break;
    case C::TLBI_EL2_VAA: tlbi(e, Opcode::TLBI_EL2_VAA, c.getTlbiEl2Vaa()); break;
    case C::TLBI_S12_VMALL: tlbi(e, Opcode::TLBI_S12_VMALL, c.getTlbiS12Vmall()); break;
    case C::TLBI_S2_IPA: tlbi(e, Opcode::TLBI_S2_IPA, c.getTlbiS2Ipa()); break;
    case C::TLBI_NSNH_ALL: e.op(Opcode::TLBI_NSNH_ALL); break;
    case C::ATC_INV: {
      auto s = c.getAtcInv();
      e.op(Opcode::ATC_INV);
      stream(e, ATC_0_SID, ATC_0_SSID, s.getSid(), s.getSsv(), s.getSsid());
      e.put0(ATC_0_GLOBAL, s.getGlobal(), "global");
      e.put1(ATC_1_SIZE, s.getSize(), "size");
      e.address(ATC_1_ADDR, s.getAddr(), 12, "addr");
      break;
    }
    case C::PRI_RESP: {
      auto s = c.getPriResp();
      e.op(Opcode::PRI_RESP);
      stream(e, PRI_0_SID, PRI_0_SSID, s.getSid(), s.getSsv(), s.getSsid());
      e.put1(PRI_1_GRPID, s.getGrpid(), "grpid");
      e.put1(PRI_1_RESP, s.getResp(), "resp");
      break;
    }
    case C::RESUME: {
      auto s = c.getResume();
      e.op(Opcode::RESUME);
      e.put0(RESUME_0_SID, s.getSid(), "sid");
      e.put0(RESUME_0_RESP, s.getResp(), "resp");
      e.put1(RESUME_1_STAG, s.getStag(), "stag");
      break;
    }
    case C::STALL_TERM: {
      auto s = c.getStallTerm();
      e.op(Opcode::STALL_TERM);
      e.put0(CMD_0_SID, s.getSid(), "sid");
      break;
    }
    case C::SYNC: {
      auto s = c.getSync();
      e.op(Opcode::SYNC);
      e.put0(SYNC_0_CS, s.getCs(), "cs");
      e.put0(SYNC_0_MSH, s.getMsh(), "msh");
      e.put0(SYNC_0_MSIATTR, s.getMsiattr(), "msiattr");
      e.put0(SYNC_0_MSIDATA, s.getMsidata(), "msidata");
      e.address(SYNC_1_MSIADDR, s.getMsiaddr(), 2, "msiaddr");
      break;
    }
  }
  return e.result();
}

kj::OneOf<CommandWords, kj::String> encodeSte(rpc::SteFields::Reader s) {
  using namespace smmuv3::ste;
  Encoder e("vsteFields");
  static constexpr uint64_t CONFIGS[] = {CONFIG_ABORT, CONFIG_BYPASS, CONFIG_S1_TRANS, CONFIG_S2_TRANS,
                                         CONFIG_NESTED};
  e.put0(STE_0_V, s.getValid(), "valid");
  e.put0(STE_0_CONFIG, CONFIGS[uint16_t(s.getConfig()) % 5], "config");
  e.put0(STE_0_S1FMT, s.getS1Fmt(), "s1Fmt");
  e.address0(STE_0_S1CTXPTR, s.getS1ContextPtr(), "s1ContextPtr");
  e.put0(STE_0_S1CDMAX, s.getS1CdMax(), "s1CdMax");
  e.put1(STE_1_S1DSS, s.getS1Dss(), "s1Dss");
  e.put1(STE_1_S1CIR, s.getS1Cir(), "s1Cir");
  e.put1(STE_1_S1COR, s.getS1Cor(), "s1Cor");
  e.put1(STE_1_S1CSH, s.getS1Csh(), "s1Csh");
  e.put1(STE_1_S1STALLD, s.getS1Stalld(), "s1Stalld");
  e.put1(STE_1_EATS, s.getEats(), "eats");
  return e.result();
}

namespace {

// A 64-byte structure's words by field: values must fit their bits; an address held in place must
// be aligned to its field's low bit and below its high one. The first problem is reported.
class StructureEncoder {
public:
  explicit StructureEncoder(kj::StringPtr name) : name_(name) {}
  void put(unsigned word, Field f, uint64_t value, kj::StringPtr field) {
    if (!f.fits(value)) {
      fail(field, kj::str(value, " does not fit in ", f.width(), " bits"));
      return;
    }
    words_.dw[word] = f.with(words_.dw[word], value);
  }
  void address(unsigned word, Field f, uint64_t addr, kj::StringPtr field) {
    if (addr & ((uint64_t(1) << f.lo) - 1)) {
      fail(field, kj::str("0x", kj::hex(addr), " is not ", uint64_t(1) << f.lo, "-byte aligned"));
    } else if (addr & ~f.mask()) {
      fail(field, kj::str("0x", kj::hex(addr), " is beyond bit ", f.hi));
    } else {
      words_.dw[word] |= addr;
    }
  }
  void set(unsigned word, uint64_t value) { words_.dw[word] = value; }
  kj::OneOf<StructureWords, kj::String> result() {
    KJ_IF_MAYBE(e, error_) { return kj::mv(*e); }
    return words_;
  }

private:
  void fail(kj::StringPtr field, kj::String message) {
    if (error_ == nullptr) error_ = kj::str(name_, ".", field, ": ", message);
  }
  kj::StringPtr name_;
  StructureWords words_;
  kj::Maybe<kj::String> error_;
};

}  // namespace

kj::OneOf<StructureWords, kj::String> encodeSteWords(rpc::SteFields::Reader s) {
  using namespace smmuv3::ste;
  StructureEncoder e("steFields");
  KJ_SWITCH_ONEOF(encodeSte(s)) {
    KJ_CASE_ONEOF(error, kj::String) { return kj::str("steFields", error.slice(strlen("vsteFields"))); }
    KJ_CASE_ONEOF(words, CommandWords) {
      e.set(0, words.dw0);
      e.set(1, words.dw1);
    }
  }
  e.put(2, STE_2_S2VMID, s.getS2Vmid(), "s2Vmid");
  e.put(2, STE_2_S2T0SZ, s.getS2T0sz(), "s2T0sz");
  e.put(2, STE_2_S2SL0, s.getS2Sl0(), "s2Sl0");
  e.put(2, STE_2_S2IR0, s.getS2Ir0(), "s2Ir0");
  e.put(2, STE_2_S2OR0, s.getS2Or0(), "s2Or0");
  e.put(2, STE_2_S2SH0, s.getS2Sh0(), "s2Sh0");
  e.put(2, STE_2_S2TG, s.getS2Tg(), "s2Tg");
  e.put(2, STE_2_S2PS, s.getS2Ps(), "s2Ps");
  e.put(2, STE_2_S2AA64, s.getS2Aa64(), "s2Aa64");
  e.put(2, STE_2_S2ENDI, s.getS2Endi(), "s2Endi");
  e.put(2, STE_2_S2AFFD, s.getS2Affd(), "s2Affd");
  e.put(2, STE_2_S2PTW, s.getS2Ptw(), "s2Ptw");
  e.put(2, STE_2_S2HD, s.getS2Hd(), "s2Hd");
  e.put(2, STE_2_S2HA, s.getS2Ha(), "s2Ha");
  e.put(2, STE_2_S2S, s.getS2S(), "s2S");
  e.put(2, STE_2_S2R, s.getS2R(), "s2R");
  e.address(3, STE_3_S2TTB, s.getS2Ttb(), "s2Ttb");
  return e.result();
}

kj::OneOf<StructureWords, kj::String> encodeCdWords(rpc::CdFields::Reader c) {
  using namespace smmuv3::cd;
  StructureEncoder e("cdFields");
  e.put(0, CD_0_T0SZ, c.getT0sz(), "t0sz");
  e.put(0, CD_0_TG0, c.getTg0(), "tg0");
  e.put(0, CD_0_IRGN0, c.getIrgn0(), "irgn0");
  e.put(0, CD_0_ORGN0, c.getOrgn0(), "orgn0");
  e.put(0, CD_0_SH0, c.getSh0(), "sh0");
  e.put(0, CD_0_EPD0, c.getEpd0(), "epd0");
  e.put(0, CD_0_ENDI, c.getEndi(), "endi");
  e.put(0, CD_0_EPD1, c.getEpd1(), "epd1");
  e.put(0, CD_0_V, c.getValid(), "valid");
  e.put(0, CD_0_IPS, c.getIps(), "ips");
  e.put(0, CD_0_AFFD, c.getAffd(), "affd");
  e.put(0, CD_0_TBI0, c.getTbi0(), "tbi0");
  e.put(0, CD_0_AA64, c.getAa64(), "aa64");
  e.put(0, CD_0_HD, c.getHd(), "hd");
  e.put(0, CD_0_HA, c.getHa(), "ha");
  e.put(0, CD_0_S, c.getS(), "s");
  e.put(0, CD_0_R, c.getR(), "r");
  e.put(0, CD_0_A, c.getA(), "a");
  e.put(0, CD_0_ASET, c.getAset(), "aset");
  e.put(0, CD_0_ASID, c.getAsid(), "asid");
  e.address(1, CD_1_TTB0, c.getTtb0(), "ttb0");
  e.set(3, c.getMair());
  return e.result();
}

}  // namespace nb
