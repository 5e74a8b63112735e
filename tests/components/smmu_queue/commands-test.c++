// tests/components/smmu_queue: the host's command builders and range encodings, against
// golden vectors computed by hand from facts 1.3 (field positions) and 1.4 (range algorithm,
// ATC span) — never from the production layout tables. Each range is also decoded by the
// SMMU model to check that the commands cover exactly what was asked.

#include "components/smmu_queue/smmuv3/commands.h"
#include "hw/smmuv3/commands.h"

#include <catch2/catch.hpp>
#include <vector>
#include <string>

namespace nb::smmuq {
namespace {

std::string hex(uint64_t v) { return kj::str("0x", kj::hex(v)).cStr(); }

void requireCommand(const Command& c, uint64_t dw0, uint64_t dw1) {
  INFO("dw0 " << hex(c.dw0) << " expected " << hex(dw0));
  INFO("dw1 " << hex(c.dw1) << " expected " << hex(dw1));
  CHECK(c.dw0 == dw0);
  CHECK(c.dw1 == dw1);
}

struct Golden {
  const char* name;
  Command actual;
  uint64_t dw0, dw1;
};

TEST_CASE("smmu_queue commands: builders place every field per facts 1.3",
          "[smmu_queue][commands]") {
  // dw0[7:0] opcode; CFGI SID dw0[63:32], SSID dw0[31:12], LEAF dw1[0], RANGE dw1[4:0];
  // TLBI VMID dw0[47:32], ASID dw0[63:48]; ATC SSV dw0[11], SSID dw0[31:12], SID dw0[63:32],
  // SIZE dw1[5:0], ADDR dw1[63:12]; SYNC CS dw0[13:12] (SEV = 2).
  const Golden vectors[] = {
      {"CFGI_STE", build::cfgiSte(0x1234), 0x0000123400000003, 0x1},
      {"CFGI_STE no leaf", build::cfgiSte(0xffffffff, false), 0xffffffff00000003, 0x0},
      {"CFGI_CD", build::cfgiCd(7, 0x5a), 0x000000070005a005, 0x1},
      {"CFGI_CD max SSID", build::cfgiCd(1, 0xfffff), 0x00000001fffff005, 0x1},
      {"CFGI_CD_ALL", build::cfgiCdAll(9), 0x0000000900000006, 0x0},
      {"CFGI_ALL = CFGI_STE_RANGE 31", build::cfgiAll(), 0x0000000000000004, 0x1f},
      {"CFGI_STE_RANGE", build::cfgiSteRange(0x100, 3), 0x0000010000000004, 0x3},
      {"TLBI_NH_ALL", build::tlbiNhAll(3), 0x0000000300000010, 0x0},
      {"TLBI_NH_ASID", build::tlbiNhAsid(0x22, 5), 0x0022000500000011, 0x0},
      {"TLBI_NH_ASID 16-bit", build::tlbiNhAsid(0xffff, 0xfffe), 0xfffffffe00000011, 0x0},
      {"TLBI_S12_VMALL", build::tlbiS12Vmall(0xabcd), 0x0000abcd00000028, 0x0},
      {"TLBI_NSNH_ALL", build::tlbiNsnhAll(), 0x30, 0x0},
      {"TLBI_EL2_ALL", build::tlbiEl2All(), 0x20, 0x0},
      {"SYNC (CS = SEV)", build::sync(), 0x2046, 0x0},
      // ATC_INV: size 0 is the whole ATC (SIZE = 52, ADDR = 0).
      {"ATC_INV all", build::atcInv(0x300, false, 0, 0x1234000, 0), 0x0000030000000040, 52},
      // [0x5000, 0x8000): pages 5..7, 5 ^ 7 = 2, fls = 2: 4 pages from page 4.
      {"ATC_INV 3 pages", build::atcInv(1, true, 3, 0x5000, 0x3000), 0x0000000100003840,
       0x4000 | 2},
      // One page: span 0.
      {"ATC_INV 1 page", build::atcInv(2, false, 0, 0x1000, 0x1000), 0x0000000200000040, 0x1000},
      // [0x7000, 0x9000): pages 7..8, 7 ^ 8 = 15, fls = 4: 16 pages from page 0.
      {"ATC_INV across a 64K line", build::atcInv(2, false, 0, 0x7000, 0x2000),
       0x0000000200000040, 4},
      // An unaligned byte range: [0x10ff0, 0x11010) touches pages 0x10 and 0x11: 2 pages.
      {"ATC_INV unaligned", build::atcInv(4, false, 0, 0x10ff0, 0x20), 0x0000000400000040,
       0x10000 | 1},
      // SSV clear: SSID is not encoded.
      {"ATC_INV SSID without SSV", build::atcInv(4, false, 9, 0x2000, 0x1000),
       0x0000000400000040, 0x2000},
  };
  for (auto& v : vectors) {
    DYNAMIC_SECTION(v.name) { requireCommand(v.actual, v.dw0, v.dw1); }
  }
  CHECK(opcodeOf(build::sync()) == 0x46);
  CHECK(opcodeOf(build::cfgiAll()) == 0x04);
}

struct RangeVector {
  const char* name;
  TlbiRange range;
  bool ril;
  std::vector<std::pair<uint64_t, uint64_t>> expected;
};

TlbiRange nhVa(uint64_t addr, uint64_t size, uint64_t granule, uint64_t pageSize, bool leaf,
               uint16_t asid = 1, uint16_t vmid = 2) {
  TlbiRange r;
  r.stage = TlbiRange::Stage::NH_VA;
  r.asid = asid;
  r.vmid = vmid;
  r.addr = addr;
  r.size = size;
  r.granule = granule;
  r.pageSize = pageSize;
  r.leaf = leaf;
  return r;
}

TlbiRange s2Ipa(uint64_t addr, uint64_t size, uint64_t granule, uint64_t pageSize, bool leaf,
                uint16_t vmid = 7) {
  TlbiRange r = nhVa(addr, size, granule, pageSize, leaf, 0, vmid);
  r.stage = TlbiRange::Stage::S2_IPA;
  return r;
}

// NH_VA with ASID 1, VMID 2: dw0 = 0x12 | VMID << 32 | ASID << 48, plus NUM << 12, SCALE << 20.
constexpr uint64_t NH = 0x0001000200000012;
constexpr uint64_t num(uint64_t n) { return n << 12; }
constexpr uint64_t scale(uint64_t s) { return s << 20; }
// dw1: LEAF bit 0, TTL << 8, TG << 10 (4K 1, 16K 2, 64K 3), address bits [63:12] in place.
constexpr uint64_t leaf = 1;
constexpr uint64_t ttl(uint64_t t) { return t << 8; }
constexpr uint64_t tg(uint64_t t) { return t << 10; }

TEST_CASE("smmu_queue commands: range invalidation encoding (facts 1.4)",
          "[smmu_queue][commands][range]") {
  const RangeVector vectors[] = {
      // tg = 12, one page: SCALE 0, NUM 1 - 1 = 0; TTL = 4 - (12-3)/(12-3) = 3.
      {"RIL 4K leaf, 1 page", nhVa(0x10000, 0x1000, 4096, 4096, true), true,
       {{NH | num(0) | scale(0), leaf | ttl(3) | tg(1) | 0x10000}}},
      // 33 pages = 0b100001: 1 page (SCALE 0, NUM 0), then 32 pages (SCALE 5, NUM 0).
      {"RIL 4K leaf, 33 pages", nhVa(0, 33 * 0x1000, 4096, 4096, true), true,
       {{NH | num(0) | scale(0), leaf | ttl(3) | tg(1) | 0x0},
        {NH | num(0) | scale(5), leaf | ttl(3) | tg(1) | 0x1000}}},
      // Non-leaf, 1 page: 1 & 31 == 1, so 2 pages (SCALE 1, NUM 0) and TTL 0.
      {"RIL non-leaf, 1 page", nhVa(0x20000, 0x1000, 4096, 4096, false), true,
       {{NH | num(0) | scale(1), tg(1) | 0x20000}}},
      // Non-leaf, 33 pages: 34 = 17 << 1: one command, SCALE 1, NUM 16.
      {"RIL non-leaf, 33 pages", nhVa(0, 33 * 0x1000, 4096, 4096, false), true,
       {{NH | num(16) | scale(1), tg(1)}}},
      // Non-leaf, 2 pages: no bump (2 & 31 = 2): SCALE 1, NUM 0.
      {"RIL non-leaf, 2 pages", nhVa(0, 0x2000, 4096, 4096, false), true,
       {{NH | num(0) | scale(1), tg(1)}}},
      // A 2M block: 512 pages = 1 << 9: SCALE 9, NUM 0; TTL = 4 - (21-3)/9 = 2.
      {"RIL 2M block", nhVa(0x200000, 0x200000, 0x200000, 4096, true), true,
       {{NH | num(0) | scale(9), leaf | ttl(2) | tg(1) | 0x200000}}},
      // A 1G block: TTL = 4 - (30-3)/9 = 1; 2^18 pages: SCALE 18.
      {"RIL 1G block", nhVa(0x40000000, 0x40000000, 0x40000000, 4096, true), true,
       {{NH | num(0) | scale(18), leaf | ttl(1) | tg(1) | 0x40000000}}},
      // 64K pages: tg = 16, TG 3, TTL = 4 - (16-3)/(16-3) = 3; 3 pages: SCALE 0, NUM 2.
      {"RIL 64K, 3 pages", nhVa(0x30000, 0x30000, 0x10000, 0x10000, true), true,
       {{NH | num(2) | scale(0), leaf | ttl(3) | tg(3) | 0x30000}}},
      // 16K pages, a 32M block: TG 2, TTL = 4 - (25-3)/(14-3) = 2; 2048 pages: SCALE 11.
      {"RIL 16K, 32M block", nhVa(0x2000000, 0x2000000, 0x2000000, 0x4000, true), true,
       {{NH | num(0) | scale(11), leaf | ttl(2) | tg(2) | 0x2000000}}},
      // 100 pages = 25 << 2: one command, SCALE 2, NUM 24.
      {"RIL 100 pages", nhVa(0, 100 * 0x1000, 4096, 4096, true), true,
       {{NH | num(24) | scale(2), leaf | ttl(3) | tg(1)}}},
      // 1000 pages = 0b1111101000: SCALE 3, num = 125 & 31 = 29 (232 pages), then 768 pages
      // = 3 << 8: SCALE 8, NUM 2, from 232 pages on.
      {"RIL 1000 pages", nhVa(0, 1000 * 0x1000, 4096, 4096, true), true,
       {{NH | num(28) | scale(3), leaf | ttl(3) | tg(1)},
        {NH | num(2) | scale(8), leaf | ttl(3) | tg(1) | 232 * 0x1000}}},
      // Granule 0: the leaf size is unknown, so no TTL hint (commands.h). One page with TTL 0
      // would be TG != 0 with NUM = SCALE = TTL = 0, a reserved encoding (IHI 0070 §4.4.1,
      // CERROR_ILL): a plain (TG = 0) invalidation of the page instead.
      {"RIL granule 0", nhVa(0x5000, 0x1000, 0, 4096, true), true, {{NH, leaf | 0x5000}}},
      // 33 pages, granule 0: the lone first page plain, then 32 pages NUM 0 SCALE 5.
      {"RIL granule 0, 33 pages", nhVa(0x5000, 33 * 0x1000, 0, 4096, true), true,
       {{NH, leaf | 0x5000}, {NH | num(0) | scale(5), leaf | tg(1) | 0x6000}}},
      // A VA with the top bits set (TTB1) keeps them: VA is dw1[63:12].
      {"RIL high VA", nhVa(0xffff000000001000, 0x1000, 4096, 4096, true), true,
       {{NH, leaf | ttl(3) | tg(1) | 0xffff000000001000}}},
      // S2_IPA: dw0 = 0x2a | VMID 7 << 32; 4 pages = 1 << 2: SCALE 2, NUM 0.
      {"RIL S2_IPA 4 pages", s2Ipa(0x40000000, 0x4000, 4096, 4096, true), true,
       {{0x000000070000002a | num(0) | scale(2), leaf | ttl(3) | tg(1) | 0x40000000}}},
      // Without RIL: one command per granule, TG/TTL/NUM/SCALE zero.
      {"no RIL 3 pages", nhVa(0x10000, 0x3000, 4096, 4096, true), false,
       {{NH, leaf | 0x10000}, {NH, leaf | 0x11000}, {NH, leaf | 0x12000}}},
      {"no RIL 2M blocks", nhVa(0x200000, 0x400000, 0x200000, 4096, true), false,
       {{NH, leaf | 0x200000}, {NH, leaf | 0x400000}}},
      {"no RIL S2_IPA non-leaf", s2Ipa(0x8000, 0x2000, 4096, 4096, false), false,
       {{0x000000070000002a, 0x8000}, {0x000000070000002a, 0x9000}}},
      {"no RIL granule 0 = page size", nhVa(0, 0x20000, 0, 0x10000, true), false,
       {{NH, leaf | 0x0}, {NH, leaf | 0x10000}}},
      {"size 0", nhVa(0x1000, 0, 4096, 4096, true), true, {}},
  };
  for (auto& v : vectors) {
    DYNAMIC_SECTION(v.name) {
      kj::Vector<Command> out;
      buildTlbiRange(v.range, v.ril, out);
      REQUIRE(out.size() == v.expected.size());
      for (size_t i = 0; i < out.size(); i++) {
        INFO("command " << i);
        requireCommand(out[i], v.expected[i].first, v.expected[i].second);
      }
    }
  }
}

TEST_CASE("smmu_queue commands: range commands cover the range as the SMMU reads them",
          "[smmu_queue][commands][range]") {
  // The model's decoder (facts 1.4 step 6: (NUM+1) x 2^SCALE x granule from ADDR) sees
  // contiguous commands covering [addr, addr + size) — one more page for a non-leaf range
  // whose page count is 1 mod 32.
  smmu::Features features;  // RIL, stage 1 and 2
  auto pages = GENERATE(1u, 2u, 3u, 31u, 32u, 33u, 63u, 65u, 97u, 511u, 512u, 1000u, 4097u);
  auto leafRange = GENERATE(true, false);
  auto pageShift = GENERATE(12u, 14u, 16u);
  const uint64_t page = uint64_t(1) << pageShift;
  TlbiRange r = nhVa(1000 * page, pages * page, page, page, leafRange);
  kj::Vector<Command> out;
  buildTlbiRange(r, true, out);
  uint64_t next = r.addr;
  for (auto& c : out) {
    auto decoded = smmu::decodeCommand(c.dw0, c.dw1, features);
    REQUIRE(decoded.is<smmu::Command>());
    auto& d = decoded.get<smmu::Command>();
    CHECK(d.op == smmu::Opcode::TLBI_NH_VA);
    CHECK(d.addr == next);
    CHECK(d.asid == 1);
    CHECK(d.vmid == 2);
    CHECK(d.leaf == leafRange);
    CHECK((d.num != 0 || d.scale != 0 || leafRange));  // non-leaf: never both 0
    next += d.rangeLength();
  }
  const uint64_t expectedEnd =
      r.addr + r.size + (!leafRange && (pages & 31) == 1 ? page : 0);
  CHECK(next == expectedEnd);
}

TEST_CASE("smmu_queue commands: a page count beyond SCALE's bits is covered with SCALE 31",
          "[smmu_queue][commands][range]") {
  // 2^36 pages of 64K (a guest's NUM 31, SCALE 31: 32 x 2^31 pages, facts 1.4 step 6): SCALE is
  // 5 bits, so one command NUM 31 (32 pages), SCALE 31, TG 64K covers it; 2^36 + 2^31 pages
  // take one of NUM 0 first (the low group, as facts 1.4 step 5 goes) and then that one.
  smmu::Features features;
  const uint64_t page = 1 << 16;
  struct Case {
    uint64_t pages;
    std::vector<unsigned> nums;   // the NUM fields, in order
  };
  for (auto& k : {Case{uint64_t(1) << 36, {31}},
                  Case{(uint64_t(1) << 36) + (uint64_t(1) << 31), {0, 31}}}) {
    const uint64_t pages = k.pages;
    TlbiRange r = nhVa(0, pages * page, page, page, false);
    kj::Vector<Command> out;
    buildTlbiRange(r, true, out);
    REQUIRE(out.size() == k.nums.size());
    uint64_t covered = 0;
    size_t i = 0;
    for (auto& c : out) {
      auto decoded = smmu::decodeCommand(c.dw0, c.dw1, features);
      REQUIRE(decoded.is<smmu::Command>());
      auto& d = decoded.get<smmu::Command>();
      CHECK(d.scale == 31);
      CHECK(d.num == k.nums[i++]);
      CHECK(d.addr == covered * page);
      covered += d.rangeLength() / page;
    }
    CHECK(covered == pages);
  }
}

TEST_CASE("smmu_queue commands: ranges that cannot be encoded are named",
          "[smmu_queue][commands]") {
  CHECK(checkTlbiRange(nhVa(0x1000, 0x1000, 4096, 4096, true)) == nullptr);
  auto why = [](TlbiRange r) {
    KJ_IF_MAYBE(w, checkTlbiRange(r)) return std::string(w->cStr());
    return std::string();
  };
  CHECK(why(nhVa(0x1000, 0x1000, 4096, 8192, true)) == "page size 8192 is not 4K, 16K or 64K");
  CHECK(why(nhVa(0x1000, 0x1000, 0x3000, 4096, true)) ==
        "granule 12288 is not a power of two >= the page size 4096");
  CHECK(why(nhVa(0x1000, 0x1000, 4096, 0x10000, true)) ==
        "granule 4096 is not a power of two >= the page size 65536");
  CHECK(why(nhVa(0x1800, 0x1000, 4096, 4096, true)) ==
        "range 0x1800+0x1000 is not aligned to the page size 4096");
  CHECK(why(nhVa(0xfffffffffffff000, 0x2000, 4096, 4096, true)) ==
        "range 0xfffffffffffff000+0x2000 wraps");
  CHECK(why(s2Ipa(0x10000000000000, 0x1000, 4096, 4096, true)) ==
        "IPA range 0x10000000000000+0x1000 is beyond 52 bits");
}

}  // namespace
}  // namespace nb::smmuq
