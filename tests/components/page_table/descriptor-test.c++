// tests/components/page_table: golden descriptor values (facts 4.1-4.3), worked out by hand:
//   S1: nG 0x800, AF 0x400, SH IS 0x300 / OS 0x200, AP RDONLY 0x80, AP UNPRIV 0x40,
//       AttrIndx CACHE 0x4 / DEV 0x8, XN 0x0060'0000'0000'0000, DBM 0x0008'0000'0000'0000.
//   S2: AF 0x400, SH as S1, HAP W 0x80 / R 0x40, MemAttr OIWB 0x3c / NC 0x14 / DEV 0x04.
//   Type: PAGE 3 at level 3, BLOCK 1 above, TABLE 3.

#include "tests/components/page_table/page-table-testing.h"

namespace nb::pt {
namespace {

constexpr auto S1 = Format::STAGE1;
constexpr auto S2 = Format::STAGE2;
constexpr Prot R = Prot::READ, W = Prot::WRITE, C = Prot::CACHE, X = Prot::NOEXEC,
               M = Prot::MMIO, P = Prot::PRIV;

TEST_CASE("PageTable: leaf descriptors match golden vectors", "[page_table][descriptor]") {
  auto [format, prot, hd, pa, level, expected] =
      GENERATE(table<Format, Prot, bool, uint64_t, uint32_t, uint64_t>({
          // Stage 1.
          {S1, R | W | C, false, 0x8000'0000, 3, 0x0000'0000'8000'0f47},
          {S1, R | C | X, false, 0x1234'5000, 3, 0x0060'0000'1234'5fc7},
          {S1, R | W, false, 0x4020'0000, 2, 0x0000'0000'4020'0e41},
          {S1, R | W | M | P, false, 0x1'0000'0000, 1, 0x0000'0001'0000'0e09},
          {S1, R | M | C, false, 0x8000'0000, 3, 0x0000'0000'8000'0fcb},
          // Stage 1 with the HD quirk: DBM on writable leaves only.
          {S1, R | W | C, true, 0x8000'0000, 3, 0x0008'0000'8000'0f47},
          {S1, R | C, true, 0x8000'0000, 3, 0x0000'0000'8000'0fc7},
          {S1, W, true, 0x8000'0000, 3, 0x0008'0000'8000'0e43},
          // Stage 2.
          {S2, R | W | C, false, 0x8000'0000, 3, 0x0000'0000'8000'07ff},
          {S2, R | X, false, 0x0020'0000, 2, 0x0060'0000'0020'0655},
          {S2, W | M, false, 0xfe00'0000, 3, 0x0000'0000'fe00'0687},
          {S2, R | W | P, false, 0x4000'0000, 1, 0x0000'0000'4000'06d5},
          // 64K granule, 52-bit PA: PA[51:48] = 0xf lands in PTE[15:12].
          {S1, R | W | C, false, 0x000f'1234'5678'0000, 3, 0x0000'1234'5678'ff47},
          {S2, R | W | C, false, 0x0008'0000'2000'0000, 2, 0x0000'0000'2000'87fd},
      }));
  DYNAMIC_SECTION(formatName(format) << " prot " << int(prot) << " hd " << hd << " pa 0x"
                                     << std::hex << pa << " L" << level) {
    CHECK(makeLeafPte(format, prot, hd, pa, level) == expected);
    CHECK(isLeaf(expected, level));
    CHECK(!isTable(expected, level));
  }
}

TEST_CASE("PageTable: output addresses round-trip, with 52-bit packing for 64K",
          "[page_table][descriptor]") {
  auto [granule, pa, field] = GENERATE(table<Granule, uint64_t, uint64_t>({
      {Granule::SIZE_4K, 0x0000'ffff'ffff'f000, 0x0000'ffff'ffff'f000},
      {Granule::SIZE_16K, 0x0000'1234'5678'c000, 0x0000'1234'5678'c000},
      {Granule::SIZE_64K, 0x0000'1234'5678'0000, 0x0000'1234'5678'0000},
      {Granule::SIZE_64K, 0x000f'1234'5678'0000, 0x0000'1234'5678'f000},
      {Granule::SIZE_64K, 0x0001'0000'0001'0000, 0x0000'0000'0001'1000},
      {Granule::SIZE_64K, 0x000f'ffff'ffff'0000, 0x0000'ffff'ffff'f000},
  }));
  DYNAMIC_SECTION("granule " << uint32_t(granule) << " pa 0x" << std::hex << pa) {
    CHECK(encodeOutputAddress(pa) == field);
    CHECK(decodeOutputAddress(field | 0x0060'0000'0000'0f47, granule) == pa);
  }
}

TEST_CASE("PageTable: table descriptors", "[page_table][descriptor]") {
  CHECK(makeTablePte(0x4000'1000) == 0x0000'0000'4000'1003);
  CHECK(makeTablePte(0x000f'0000'0001'0000) == 0x0000'0000'0001'f003);
  CHECK(decodeOutputAddress(0x0000'0000'0001'f003, Granule::SIZE_64K) == 0x000f'0000'0001'0000);
  CHECK(isTable(0x4000'1003, 0));
  CHECK(isTable(0x4000'1003, 2));
  CHECK(!isTable(0x4000'1003, 3));  // type 3 at level 3 is a page
  CHECK(isLeaf(0x4000'1003, 3));
  CHECK(!isLeaf(0x4000'1001, 3));   // type 1 is no leaf at level 3
  CHECK(isLeaf(0x4000'1001, 2));
  CHECK(!isLeaf(0, 2));
  CHECK(!isTable(0, 2));
}

TEST_CASE("PageTable: dirty state of a leaf", "[page_table][descriptor]") {
  // (pte & (RDONLY | DBM)) == DBM (facts 4.9).
  CHECK(isDirty(0x0008'0000'8000'0f47));   // writable-dirty
  CHECK(!isDirty(0x0008'0000'8000'0fc7));  // writable-clean (AP[2] set)
  CHECK(!isDirty(0x0000'0000'8000'0fc7));  // read-only
  CHECK(!isDirty(0x0000'0000'8000'0f47));  // writable without DBM
}

TEST_CASE("PageTable: descriptor fields are declared where the facts put them",
          "[page_table][descriptor]") {
  CHECK(PTE_TYPE.mask() == 0x3);
  CHECK(PTE_ATTRINDX.mask() == 0x1c);
  CHECK(PTE_MEMATTR.mask() == 0x3c);
  CHECK(PTE_AP_UNPRIV.mask() == 0x40);
  CHECK(PTE_AP_RDONLY.mask() == 0x80);
  CHECK(PTE_S2AP.mask() == 0xc0);
  CHECK(PTE_SH.mask() == 0x300);
  CHECK(PTE_AF.mask() == 0x400);
  CHECK(PTE_NG.mask() == 0x800);
  CHECK(PTE_OA.mask() == 0x0000'ffff'ffff'f000);
  CHECK(PTE_DBM.mask() == 0x0008'0000'0000'0000);
  CHECK(PTE_XN.mask() == 0x0060'0000'0000'0000);
  CHECK(PTE_NSTABLE.mask() == 0x8000'0000'0000'0000);
}

}  // namespace
}  // namespace nb::pt
