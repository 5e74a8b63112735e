// `nestbed decode`'s field-by-field text (system/cli/decode.h) of golden commands, STEs and CDs
// built by hand from the field positions of facts 1.3, 2.1 and 2.5.

#include "system/cli/decode.h"

#include <catch2/catch.hpp>

#include <string>

namespace nb {
namespace {

bool has(const kj::String& text, const std::string& line) {
  return std::string(text.cStr()).find(line) != std::string::npos;
}

TEST_CASE("decode: a command's opcode and fields (facts 1.2, 1.3)", "[decode]") {
  // TLBI_NH_VA: OP 0x12, ASID dw0[63:48] = 3; LEAF dw1[0], VA dw1[63:12] = 0x10000.
  auto tlbi = decode::command(0x12 | uint64_t(3) << 48, 0x10000 | 1);
  INFO(tlbi.cStr());
  CHECK(has(tlbi, "CMD_TLBI_NH_VA (opcode 0x12)"));
  CHECK(has(tlbi, "  ASID        3\n"));
  CHECK(has(tlbi, "  LEAF        1\n"));
  CHECK(has(tlbi, "  ADDR        0x10000\n"));
  // CFGI_CD: SSID dw0[31:12] = 5, SID dw0[63:32] = 0x300.
  auto cfgi = decode::command(0x05 | uint64_t(5) << 12 | uint64_t(0x300) << 32, 1);
  CHECK(has(cfgi, "CMD_CFGI_CD"));
  CHECK(has(cfgi, "  SID         0x300\n"));
  CHECK(has(cfgi, "  SSID        0x5\n"));
  // SYNC: CS dw0[13:12] = 1 (IRQ), MSIADDR dw1[51:2].
  auto sync = decode::command(0x46 | uint64_t(1) << 12, 0x1000);
  CHECK(has(sync, "CMD_SYNC"));
  CHECK(has(sync, "  CS          1\n"));
  CHECK(has(sync, "  MSIADDR     0x1000\n"));
  CHECK(has(decode::command(0x99, 0), "unknown opcode 0x99"));
}

TEST_CASE("decode: an STE's fields (facts 2.1)", "[decode]") {
  // Stage-1 translate: V, Config 0b101, S1Fmt 2 (64K leaves), S1ContextPtr, S1CDMax 20;
  // S1DSS 2, S1CIR/COR 1 (WBRA), S1CSH 3 (ISH).
  uint64_t s1[4] = {1 | 5 << 1 | 2 << 4 | 0x40044000 | uint64_t(20) << 59,
                    2 | 1 << 2 | 1 << 4 | 3 << 6, 0, 0};
  auto text = decode::ste(s1);
  INFO(text.cStr());
  CHECK(has(text, "STE valid, Config 5 = stage 1"));
  CHECK(has(text, "  S1Fmt       2\n"));
  CHECK(has(text, "  S1ContextPtr 0x40044000\n"));
  CHECK(has(text, "  S1CDMax     20\n"));
  CHECK(has(text, "  S1DSS       2\n"));
  CHECK(has(text, "  S1CSH       3\n"));
  // Stage-2 translate: S2VMID dw2[15:0], S2T0SZ [37:32], S2SL0 [39:38], S2TG [47:46],
  // S2PS [50:48], S2AA64 [51]; S2TTB dw3[51:4].
  uint64_t s2[4] = {1 | 6 << 1, 0,
                    9 | uint64_t(24) << 32 | uint64_t(1) << 38 | uint64_t(5) << 48 | uint64_t(1) << 51,
                    0x40100000};
  auto text2 = decode::ste(s2);
  INFO(text2.cStr());
  CHECK(has(text2, "Config 6 = stage 2"));
  CHECK(has(text2, "  S2VMID      9\n"));
  CHECK(has(text2, "  S2T0SZ      24\n"));
  CHECK(has(text2, "  S2SL0       1\n"));
  CHECK(has(text2, "  S2PS        5\n"));
  CHECK(has(text2, "  S2TTB       0x40100000\n"));
  uint64_t invalid[4] = {0, 0, 0, 0};
  CHECK(has(decode::ste(invalid), "STE invalid (V = 0: C_BAD_STE), Config 0 = abort"));
}

TEST_CASE("decode: a CD's fields (facts 2.5)", "[decode]") {
  // T0SZ 16 (48-bit), TG0 0 (4K), IRGN0/ORGN0 1, SH0 3, EPD1, V, IPS 5, AA64, R, A, ASET,
  // ASID 5; TTB0 dw1[51:4]; MAIR dw3.
  uint64_t cd[4] = {16 | 1 << 8 | 1 << 10 | 3 << 12 | uint64_t(1) << 30 | uint64_t(1) << 31 |
                        uint64_t(5) << 32 | uint64_t(1) << 41 | uint64_t(1) << 45 | uint64_t(1) << 46 |
                        uint64_t(1) << 47 | uint64_t(5) << 48,
                    0x40042000, 0, 0xf404ff44};
  auto text = decode::cd(cd);
  INFO(text.cStr());
  CHECK(has(text, "CD valid, ASID 5, 48-bit input, 4K granule"));
  CHECK(has(text, "  T0SZ        16\n"));
  CHECK(has(text, "  SH0         3\n"));
  CHECK(has(text, "  EPD1        1\n"));
  CHECK(has(text, "  IPS         5\n"));
  CHECK(has(text, "  ASET        1\n"));
  CHECK(has(text, "  TTB0        0x40042000\n"));
  CHECK(has(text, "  MAIR        0xf404ff44\n"));
}

}  // namespace
}  // namespace nb
