// tests/components/page_table: the `linux` table lifetime against io-pgtable-arm's rules
// (linux-invalidation-facts 1.1-1.3): which tables an unmap frees, the callback sequence it
// returns (flush_walk per freed table entry, then add_page per processed entry), iommu_pgsize's
// cut of a range into unmap_pages calls, and that a freed subtree's leaves are never read.
// Every expected list is derived by hand from the facts' tables, not from the engine.

#include "tests/components/page_table/page-table-testing.h"

#include <vector>

namespace nb::pt {
namespace {

constexpr Prot RW = Prot::READ | Prot::WRITE;
constexpr uint64_t PAGE = 4 * KiB;
// A PA congruent to the iova modulo 4K only: every leaf is a 4K page.
constexpr PhysAddr PAGES_ONLY = 0x1000;

struct Inv {
  uint64_t iova, size, granule;
  bool leaf;
};

std::string describe(const kj::Vector<Invalidation>& list) {
  std::string s;
  for (auto& i : list) {
    s += kj::str("{0x", kj::hex(i.iova), ", 0x", kj::hex(i.size), ", 0x", kj::hex(i.granule),
                 i.leaf ? ", leaf} " : ", walk} ").cStr();
  }
  return s;
}

void checkList(const kj::Vector<Invalidation>& got, const std::vector<Inv>& expected) {
  INFO("got " << describe(got));
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < expected.size(); i++) {
    INFO("entry " << i);
    CHECK(got[i].iova == expected[i].iova);
    CHECK(got[i].size == expected[i].size);
    CHECK(got[i].granule == expected[i].granule);
    CHECK(got[i].leaf == expected[i].leaf);
  }
}

TableConfig linuxS1() {
  TableConfig c;  // stage 1, 4K, 48 bits; pgsize_bitmap 4K | 2M | 1G
  CHECK(c.lifetime == TableLifetime::LINUX);  // the default
  return c;
}

TEST_CASE("Linux lifetime: a 4K unmap frees no table, even the one it empties",
          "[page_table][linux]") {
  PageTableFixture fx;
  auto t = fx.make(linuxS1());
  REQUIRE(mapOne(*t, 0x20'0000, 0x8000'0000, PAGE, RW).error == Errno::OK);
  const uint64_t pages = t->tablePagesInUse();
  CHECK(pages == 4);  // PGD, L1, L2, L3
  auto u = unmapOne(*t, 0x20'0000, PAGE);
  CHECK(u.error == Errno::OK);
  CHECK(u.bytesUnmapped == PAGE);
  checkList(u.invalidations, {{0x20'0000, PAGE, PAGE, true}});  // add_page(iova, 4K)
  CHECK(t->tablePagesInUse() == pages);
  CHECK(t->stats().tablesFreed == 0);
  // The next map of that page allocates nothing: the tables are still there.
  const uint64_t allocated = t->stats().tablesAllocated;
  REQUIRE(mapOne(*t, 0x20'0000, 0x8000'0000, PAGE, RW).error == Errno::OK);
  CHECK(t->stats().tablesAllocated == allocated);
}

TEST_CASE("Linux lifetime: golden callback sequences (facts 1.2, 1.3)", "[page_table][linux]") {
  PageTableFixture fx;
  auto t = fx.make(linuxS1());
  const uint64_t base = 4 * GiB;  // 1 GiB aligned

  SECTION("16 pages inside one L3 table: (4K, 16), no walk") {
    REQUIRE(mapOne(*t, base, PAGES_ONLY, 2 * MiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, base + 3 * PAGE, 16 * PAGE);
    CHECK(u.bytesUnmapped == 16 * PAGE);
    checkList(u.invalidations, {{base + 3 * PAGE, 16 * PAGE, PAGE, true}});
    CHECK(t->stats().tablesFreed == 0);
  }
  SECTION("1 MiB of 4K pages, 1 MiB aligned: (4K, 256), no walk, no table freed") {
    REQUIRE(mapOne(*t, base, PAGES_ONLY, 2 * MiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, base + MiB, MiB);
    CHECK(u.bytesUnmapped == MiB);
    checkList(u.invalidations, {{base + MiB, MiB, PAGE, true}});
    CHECK(t->stats().tablesFreed == 0);
  }
  SECTION("2 MiB of 4K pages, 2M aligned: (2M, 1) frees the L3 table") {
    REQUIRE(mapOne(*t, base, PAGES_ONLY, 2 * MiB, RW).error == Errno::OK);
    const uint64_t pages = t->tablePagesInUse();
    auto u = unmapOne(*t, base, 2 * MiB);
    CHECK(u.bytesUnmapped == 2 * MiB);
    // flush_walk(iova, 2M, 4K), then add_page(iova, 2M).
    checkList(u.invalidations, {{base, 2 * MiB, PAGE, false}, {base, 2 * MiB, 2 * MiB, true}});
    CHECK(t->tablePagesInUse() == pages - 1);
    CHECK(t->stats().tablesFreed == 1);
  }
  SECTION("a 2M block: add_page(iova, 2M) only") {
    REQUIRE(mapOne(*t, base, 0x4000'0000, 2 * MiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, base, 2 * MiB);
    checkList(u.invalidations, {{base, 2 * MiB, 2 * MiB, true}});
    CHECK(t->stats().tablesFreed == 0);
  }
  SECTION("an aligned 1 GiB of 4K pages: one walk, the subtree freed, no leaf read") {
    REQUIRE(mapOne(*t, base, PAGES_ONLY, GiB, RW).error == Errno::OK);
    CHECK(t->tablePagesInUse() == 1 + 1 + 1 + 512);  // PGD, L1, L2, 512 L3
    const uint64_t readsBefore = t->stats().unmapLastLevelReads;
    auto u = unmapOne(*t, base, GiB);
    CHECK(u.bytesUnmapped == GiB);
    checkList(u.invalidations, {{base, GiB, PAGE, false}, {base, GiB, GiB, true}});
    CHECK(t->stats().tablesFreed == 1 + 512);
    CHECK(t->tablePagesInUse() == 2);  // PGD and the L1 table remain
    CHECK(t->stats().unmapLastLevelReads == readsBefore);  // not one leaf read
  }
  SECTION("1 GiB of 4K pages, 2M- but not 1G-aligned: (2M, 511) then (2M, 1)") {
    const uint64_t iova = base + 2 * MiB;
    REQUIRE(mapOne(*t, iova, PAGES_ONLY, GiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, iova, GiB);
    CHECK(u.bytesUnmapped == GiB);
    std::vector<Inv> expected;
    for (uint64_t i = 0; i < 511; i++) {
      expected.push_back({iova + i * 2 * MiB, 2 * MiB, PAGE, false});
    }
    expected.push_back({iova, 511 * 2 * MiB, 2 * MiB, true});
    expected.push_back({base + GiB, 2 * MiB, PAGE, false});
    expected.push_back({base + GiB, 2 * MiB, 2 * MiB, true});
    checkList(u.invalidations, expected);
    CHECK(t->stats().tablesFreed == 512);  // 512 L3 tables, no L2 table
  }
  SECTION("4K head, 2M-aligned body, 4K tail: (4K, k), (2M, m), (4K, j)") {
    const uint64_t iova = base + 2 * MiB - 2 * PAGE;
    const uint64_t size = 2 * PAGE + 2 * 2 * MiB + 3 * PAGE;
    REQUIRE(mapOne(*t, iova, PAGES_ONLY, size, RW).error == Errno::OK);
    auto u = unmapOne(*t, iova, size);
    CHECK(u.bytesUnmapped == size);
    checkList(u.invalidations, {{iova, 2 * PAGE, PAGE, true},
                                {base + 2 * MiB, 2 * MiB, PAGE, false},
                                {base + 4 * MiB, 2 * MiB, PAGE, false},
                                {base + 2 * MiB, 4 * MiB, 2 * MiB, true},
                                {base + 6 * MiB, 3 * PAGE, PAGE, true}});
    CHECK(t->stats().tablesFreed == 2);
  }
}

TEST_CASE("Linux lifetime: unmap stops at a hole or a refused partial block",
          "[page_table][linux]") {
  PageTableFixture fx;
  auto t = fx.make(linuxS1());
  SECTION("a hole inside the processed entries: what came before is unmapped") {
    REQUIRE(mapOne(*t, 0x10'0000, PAGES_ONLY, 3 * PAGE, RW).error == Errno::OK);
    auto u = unmapOne(*t, 0x10'0000, 8 * PAGE);
    CHECK(u.error == Errno::NOENT);
    CHECK(u.bytesUnmapped == 3 * PAGE);
    checkList(u.invalidations, {{0x10'0000, 3 * PAGE, PAGE, true}});
  }
  SECTION("4K inside a 2M block: refused, nothing unmapped (Linux >= 6.13)") {
    REQUIRE(mapOne(*t, 2 * MiB, 0x4000'0000, 2 * MiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, 2 * MiB + PAGE, PAGE);
    CHECK(u.error == Errno::INVAL);
    CHECK(u.bytesUnmapped == 0);
    CHECK(u.invalidations.size() == 0);
  }
}

TEST_CASE("Linux lifetime: a split (<= 6.12) unmaps the piece inside a new table",
          "[page_table][linux]") {
  PageTableFixture fx;
  TableConfig c = linuxS1();
  c.partialUnmap = PartialUnmap::SPLIT;
  auto t = fx.make(c);
  REQUIRE(mapOne(*t, 2 * MiB, 0x4000'0000, 2 * MiB, RW).error == Errno::OK);
  auto u = unmapOne(*t, 2 * MiB + PAGE, PAGE);
  CHECK(u.error == Errno::OK);
  CHECK(u.bytesUnmapped == PAGE);
  // The piece's leaf entry names the original block's size (io-page-table.h).
  checkList(u.invalidations, {{2 * MiB + PAGE, PAGE, 2 * MiB, true}});
  CHECK(lookup(*t, 2 * MiB) == 0x4000'0000);
  CHECK(lookup(*t, 2 * MiB + PAGE) == NOT_MAPPED);
  CHECK(lookup(*t, 2 * MiB + 2 * PAGE) == 0x4000'0000 + 2 * PAGE);
}

}  // namespace
}  // namespace nb::pt
