// Scenario commands built by name (system/script/commands.h): each opcode's words against
// golden values derived by hand from the field positions of facts 1.3, and what is refused.

#include "system/script/commands.h"

#include <capnp/message.h>
#include <capnp/serialize-text.h>
#include <catch2/catch.hpp>

namespace nb {
namespace {

kj::OneOf<CommandWords, kj::String> encode(const char* text) {
  capnp::MallocMessageBuilder message;
  auto command = message.initRoot<rpc::RawCommand>();
  capnp::TextCodec().decode(text, command);
  return encodeCommand(command.asReader());
}

TEST_CASE("Commands built by name encode as facts 1.3 places their fields", "[script]") {
  struct Row {
    const char* text;
    uint64_t dw0, dw1;
  };
  const Row rows[] = {
      {"(dw0 = 0x46)", 0x46, 0},                                               // raw words
      {"(sync = ())", 0x46, 0},                                                // OP 0x46
      // SYNC: CS dw0[13:12], MSH [23:22], MSIATTR [27:24], MSIADDR dw1[51:2].
      {"(sync = (cs = 1, msh = 3, msiattr = 0xf, msiaddr = 0x1000))", 0x0fc01046, 0x1000},
      // NH_VA: ASID dw0[63:48], LEAF dw1[0], VA dw1[63:12].
      {"(tlbiNhVa = (asid = 3, addr = 0x10000, leaf = true))", 0x0003000000000012, 0x10001},
      // S2_IPA: NUM dw0[16:12], SCALE [24:20], VMID [47:32]; TTL dw1[9:8], TG [11:10], IPA [51:12].
      {"(tlbiS2Ipa = (vmid = 5, addr = 0x40000000, leaf = true, ttl = 3, tg = 1, num = 1, scale = 2))",
       0x000000050020102a, 0x40000701},
      {"(tlbiNhAll = (vmid = 7))", 0x0000000700000010, 0},
      {"(tlbiNhAsid = (asid = 1, vmid = 2))", 0x0001000200000011, 0},
      {"(tlbiS12Vmall = (vmid = 9))", 0x0000000900000028, 0},
      {"(tlbiEl2Asid = (asid = 4))", 0x0004000000000021, 0},
      {"(tlbiNsnhAll = void)", 0x30, 0},
      {"(tlbiEl2All = void)", 0x20, 0},
      // CFGI: SSID dw0[31:12], SID [63:32], LEAF dw1[0], RANGE dw1[4:0] (31: all).
      {"(cfgiSte = (sid = 0x100, leaf = true))", 0x0000010000000003, 1},
      {"(cfgiSteRange = (sid = 0x100, range = 3))", 0x0000010000000004, 3},
      {"(cfgiAll = void)", 0x04, 31},
      {"(cfgiCd = (sid = 0x300, ssid = 5, leaf = true))", 0x0000030000005005, 1},
      {"(cfgiCdAll = (sid = 0x300))", 0x0000030000000006, 0},
      // ATC_INV: SSV dw0[11], SSID [31:12], SID [63:32]; SIZE dw1[5:0], ADDR dw1[63:12].
      {"(atcInv = (sid = 8, ssv = true, ssid = 2, addr = 0x20000, size = 52))", 0x0000000800002840, 0x20034},
      {"(atcInv = (sid = 8, global = true))", 0x0000000800000240, 0},
      // PRI_RESP: GRPID dw1[8:0], RESP dw1[13:12].
      {"(priResp = (sid = 1, grpid = 7, resp = 2))", 0x0000000100000041, 0x2007},
      // RESUME: RESP dw0[13:12], SID [63:32], STAG dw1[15:0].
      {"(resume = (sid = 2, stag = 9, resp = 1))", 0x0000000200001044, 9},
      {"(stallTerm = (sid = 2))", 0x0000000200000045, 0},
      // PREFETCH: SID dw0[63:32]; ADDR dw1[63:12], SIZE dw1[4:0].
      {"(prefetchConfig = (sid = 0x10))", 0x0000001000000001, 0},
      {"(prefetchAddr = (sid = 0x10, addr = 0x3000, size = 2))", 0x0000001000000002, 0x3002},
  };
  for (auto& row : rows) {
    INFO(row.text);
    auto result = encode(row.text);
    if (result.is<kj::String>()) FAIL(result.get<kj::String>().cStr());
    auto words = result.get<CommandWords>();
    CHECK(words.dw0 == row.dw0);
    CHECK(words.dw1 == row.dw1);
  }
}

TEST_CASE("A built command's field that does not fit, or is unaligned, is refused naming it",
          "[script]") {
  struct Row {
    const char* text;
    const char* error;
  };
  const Row rows[] = {
      {"(tlbiNhVa = (asid = 3, addr = 0x10001))", "tlbiNhVa.addr: 0x10001 is not 4 KiB aligned"},
      {"(tlbiNhVa = (num = 32))", "tlbiNhVa.num: 32 does not fit in 5 bits"},
      {"(tlbiS2Ipa = (addr = 0x10000000000000))", "tlbiS2Ipa.addr: 0x10000000000000 is beyond bit 51"},
      {"(cfgiSteRange = (range = 32))", "cfgiSteRange.range: 32 does not fit in 5 bits"},
      {"(cfgiCd = (ssid = 0x100000))", "cfgiCd.ssid: 1048576 does not fit in 20 bits"},
      {"(sync = (msiaddr = 0x1002))", "sync.msiaddr: 0x1002 is not 4-byte aligned"},
      {"(dw0 = 0x12, sync = ())", "a command is raw words or built by name, not both (dw0/dw1 given)"},
  };
  for (auto& row : rows) {
    INFO(row.text);
    auto result = encode(row.text);
    REQUIRE(result.is<kj::String>());
    CHECK(result.get<kj::String>() == row.error);
  }
}

TEST_CASE("An STE built by field encodes as facts 2.1 places its fields", "[script]") {
  auto encode = [](const char* text) {
    capnp::MallocMessageBuilder message;
    auto fields = message.initRoot<rpc::SteFields>();
    capnp::TextCodec().decode(text, fields);
    return encodeSte(fields.asReader());
  };
  struct Row {
    const char* text;
    uint64_t dw0, dw1;
  };
  const Row rows[] = {
      // V dw0[0], Config dw0[3:1]: bypass 0b100, stage 2 0b110, abort 0b000.
      {"(config = bypass)", 0x9, 0},
      {"(config = s2Trans)", 0xd, 0},
      {"(valid = false, config = abort)", 0, 0},
      // Stage 1: Config 0b101, S1ContextPtr dw0[51:6] in place, S1CDMax [63:59]; S1DSS dw1[1:0],
      // S1CIR [3:2], S1COR [5:4], S1CSH [7:6], EATS [29:28].
      {"(config = s1Trans, s1ContextPtr = 0x2000000, s1CdMax = 3, s1Cir = 1, s1Cor = 1, s1Csh = 3, eats = 1)",
       0x200000b | uint64_t(3) << 59, 0x4 | 0x10 | 0xc0 | uint64_t(1) << 28},
  };
  for (auto& row : rows) {
    INFO(row.text);
    auto result = encode(row.text);
    if (result.is<kj::String>()) FAIL(result.get<kj::String>().cStr());
    CHECK(result.get<CommandWords>().dw0 == row.dw0);
    CHECK(result.get<CommandWords>().dw1 == row.dw1);
  }
  auto unaligned = encode("(config = s1Trans, s1ContextPtr = 0x2000010)");
  REQUIRE(unaligned.is<kj::String>());
  CHECK(unaligned.get<kj::String>() == "vsteFields.s1ContextPtr: 0x2000010 is not 64-byte aligned");
  auto wide = encode("(s1Dss = 4)");
  REQUIRE(wide.is<kj::String>());
  CHECK(wide.get<kj::String>() == "vsteFields.s1Dss: 4 does not fit in 2 bits");
}

}  // namespace
}  // namespace nb
