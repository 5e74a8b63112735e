// tests/components/page_table: behaviours of the engine: leaf selection, errors, partial unmap
// policies, table freeing and invalidations, walks, dirty tracking, accounting and leaks.

#include "tests/components/page_table/page-table-testing.h"

namespace nb::pt {
namespace {

constexpr Prot RW = Prot::READ | Prot::WRITE;

TableConfig s1Config4K(PartialUnmap policy = PartialUnmap::REFUSE) {
  TableConfig config;
  config.format = Format::STAGE1;
  config.granule = Granule::SIZE_4K;
  config.ias = 48;
  config.oas = 48;
  config.partialUnmap = policy;
  return config;
}

uint32_t leafLevel(const IoPageTable& t, uint64_t iova) {
  auto steps = t.walk(iova);
  REQUIRE(steps.size() > 0);
  REQUIRE(isLeaf(steps.back().descriptor, steps.back().level));
  return steps.back().level;
}

bool sameInvalidations(const kj::Vector<Invalidation>& got,
                       std::initializer_list<Invalidation> expected) {
  if (got.size() != expected.size()) return false;
  size_t i = 0;
  for (auto& e : expected) {
    auto& g = got[i++];
    if (g.iova != e.iova || g.size != e.size || g.granule != e.granule || g.leaf != e.leaf) {
      return false;
    }
  }
  return true;
}

std::string describe(const kj::Vector<Invalidation>& list) {
  std::string s;
  for (auto& i : list) {
    s += kj::str("{0x", kj::hex(i.iova), ", 0x", kj::hex(i.size), ", 0x", kj::hex(i.granule),
                 i.leaf ? ", leaf} " : ", walk} ").cStr();
  }
  return s;
}

TEST_CASE("PageTable: create reports bad configs as errno", "[page_table]") {
  PageTableFixture fx;
  SECTION("bad geometry is EINVAL") {
    TableConfig config = s1Config4K();
    config.ias = 52;
    auto r = IoPageTable::create(*fx.mem, fx.frames, config);
    REQUIRE(r.is<Errno>());
    CHECK(r.get<Errno>() == Errno::INVAL);
  }
  SECTION("HD on stage 2 is EOPNOTSUPP") {
    TableConfig config = s1Config4K();
    config.format = Format::STAGE2;
    config.hd = true;
    auto r = IoPageTable::create(*fx.mem, fx.frames, config);
    REQUIRE(r.is<Errno>());
    CHECK(r.get<Errno>() == Errno::OPNOTSUPP);
  }
  SECTION("no frame for the PGD is ENOMEM") {
    BudgetFrames none(fx.frames, 0);
    auto r = IoPageTable::create(*fx.mem, none, s1Config4K());
    REQUIRE(r.is<Errno>());
    CHECK(r.get<Errno>() == Errno::NOMEM);
  }
  SECTION("the throwing constructor refuses a bad config") {
    TableConfig config = s1Config4K();
    config.oas = 47;
    CHECK_THROWS(IoPageTable(*fx.mem, fx.frames, config));
  }
  SECTION("the PGD is aligned to its size and exported") {
    TableConfig config = s1Config4K();
    config.format = Format::STAGE2;
    config.granule = Granule::SIZE_16K;
    config.ias = config.oas = 40;  // 16 concatenated tables: 256 KiB
    auto t = fx.make(config);
    CHECK(t->rootPa() % (256 * KiB) == 0);
    CHECK(t->tableBytesInUse() == 256 * KiB);
    CHECK(t->tablePagesInUse() == 1);
    CHECK(t->s2Config().vttbr == t->rootPa());
    CHECK(t->s2Config().vtcr.sl == 1);
    CHECK_THROWS(t->s1Config());
  }
}

TEST_CASE("PageTable: map splits a run into the largest aligned leaves", "[page_table]") {
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  // 1G + 2M + 4K at a 1G-aligned iova and pa: one leaf of each size.
  auto r = mapOne(*t, GiB, 4 * GiB, GiB + 2 * MiB + 4 * KiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(r.bytesMapped == GiB + 2 * MiB + 4 * KiB);
  CHECK(leafLevel(*t, GiB) == 1);
  CHECK(leafLevel(*t, 2 * GiB) == 2);
  CHECK(leafLevel(*t, 2 * GiB + 2 * MiB) == 3);
  CHECK(lookup(*t, GiB + 12345) == 4 * GiB + 12345);
  CHECK(lookup(*t, 2 * GiB + 2 * MiB + 42) == 5 * GiB + 2 * MiB + 42);
  CHECK(lookup(*t, 2 * GiB + 2 * MiB + 4 * KiB) == NOT_MAPPED);

  // A PA aligned to 4K only: no blocks, whatever the iova alignment.
  r = mapOne(*t, 8 * GiB, 0x1000, 2 * MiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(leafLevel(*t, 8 * GiB) == 3);
  CHECK(leafLevel(*t, 8 * GiB + 2 * MiB - 4 * KiB) == 3);
  CHECK(lookup(*t, 8 * GiB + 2 * MiB - 1) == 0x1000 + 2 * MiB - 1);

  // 16K granule: 32M blocks at level 2, and never a level-1 leaf.
  TableConfig c16 = s1Config4K();
  c16.granule = Granule::SIZE_16K;
  auto t16 = fx.make(c16);
  r = mapOne(*t16, 64 * GiB, 64 * GiB, 64 * GiB + 32 * MiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(leafLevel(*t16, 64 * GiB) == 2);
  CHECK(leafLevel(*t16, 127 * GiB) == 2);
  CHECK(unmapOne(*t16, 64 * GiB, 64 * GiB + 32 * MiB).error == Errno::OK);
  // A whole level-0 slot (128T): level 1 holds no leaves with 16K, so 32M blocks below it.
  r = mapOne(*t16, 0, 0, 128 * TiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(leafLevel(*t16, 0) == 2);
  CHECK(leafLevel(*t16, 128 * TiB - 32 * MiB) == 2);
  CHECK(lookup(*t16, 100 * TiB + 12345) == 100 * TiB + 12345);
  CHECK(t16->tablePagesInUse() == 1 + 1 + 2048);
  CHECK(unmapOne(*t16, 0, 128 * TiB).bytesUnmapped == 128 * TiB);
  // 32M-page unmaps free no table (linux lifetime): the L1 and 2048 L2 tables stay.
  CHECK(t16->tablePagesInUse() == 1 + 1 + 2048);
}

TEST_CASE("PageTable: map argument errors", "[page_table]") {
  PageTableFixture fx;
  TableConfig config = s1Config4K();
  config.ias = 40;
  config.oas = 36;
  auto t = fx.make(config);
  auto [iova, pa, size, prot, error] =
      GENERATE(table<uint64_t, uint64_t, uint64_t, Prot, Errno>({
          {0x1000, 0x2000, 0, RW, Errno::INVAL},                    // empty
          {0x1800, 0x2000, 0x1000, RW, Errno::INVAL},               // misaligned iova
          {0x1000, 0x2800, 0x1000, RW, Errno::INVAL},               // misaligned pa
          {0x1000, 0x2000, 0x1800, RW, Errno::INVAL},               // misaligned size
          {uint64_t(1) << 40, 0x2000, 0x1000, RW, Errno::RANGE},    // iova beyond IAS
          {(uint64_t(1) << 40) - 0x1000, 0, 0x2000, RW, Errno::RANGE},
          {0x1000, uint64_t(1) << 36, 0x1000, RW, Errno::RANGE},    // pa beyond OAS
          {0x1000, 0x2000, 0x1000, Prot::CACHE | Prot::NOEXEC, Errno::INVAL},  // no R/W
          {0x1000, 0x2000, 0x1000, Prot::WRITE, Errno::OK},
          {(uint64_t(1) << 40) - 0x1000, (uint64_t(1) << 36) - 0x1000, 0x1000, Prot::READ,
           Errno::OK},
      }));
  auto r = mapOne(*t, iova, pa, size, prot);
  CHECK(r.error == error);
  if (error == Errno::OK) {
    CHECK(r.failedIndex == nullptr);
    CHECK(lookup(*t, iova) == pa);
  } else {
    CHECK(r.failedIndex == size_t(0));
    CHECK(r.bytesMapped == 0);
    CHECK(t->tablePagesInUse() == 1);
  }
}

TEST_CASE("PageTable: map over a mapping is EEXIST and reports exactly what was mapped",
          "[page_table]") {
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  REQUIRE(mapOne(*t, 0x10'0000 + 0x5000, 0x9000'5000, 0x1000, RW).error == Errno::OK);

  SECTION("a batch stops at the run hitting a leaf") {
    MapRun runs[] = {
        {0x4000'0000, 0x8000'0000, 2 * MiB, RW},          // fine: one block
        {0x10'0000, 0x9000'0000, 0x8000, RW},              // pages 0..4 map, page 5 exists
        {0x6000'0000, 0xa000'0000, 0x1000, RW},            // never reached
    };
    auto r = t->map(runs);
    CHECK(r.error == Errno::EXIST);
    CHECK(r.failedIndex == size_t(1));
    CHECK(r.bytesMapped == 2 * MiB + 0x5000);
    CHECK(lookup(*t, 0x4000'0000 + 123) == 0x8000'0000 + 123);
    CHECK(lookup(*t, 0x10'4000) == 0x9000'4000);
    CHECK(lookup(*t, 0x10'5000) == 0x9000'5000);  // the old mapping, untouched
    CHECK(lookup(*t, 0x10'6000) == NOT_MAPPED);
    CHECK(lookup(*t, 0x6000'0000) == NOT_MAPPED);
  }
  SECTION("a block over a table holding a leaf") {
    auto r = mapOne(*t, 0, 0x8000'0000, 2 * MiB, RW);
    CHECK(r.error == Errno::EXIST);
    CHECK(r.bytesMapped == 0);
    CHECK(lookup(*t, 0x10'5000) == 0x9000'5000);
  }
  SECTION("a page inside a bigger block") {
    REQUIRE(mapOne(*t, 0x4000'0000, 0x4000'0000, GiB, RW).error == Errno::OK);
    auto r = mapOne(*t, 0x4000'0000 + 0x20'0000, 0x1000, 0x1000, Prot::READ);
    CHECK(r.error == Errno::EXIST);
    r = mapOne(*t, 0x4000'0000 + 0x20'0000, 0x20'0000, 2 * MiB, Prot::READ);
    CHECK(r.error == Errno::EXIST);
  }
}

TEST_CASE("PageTable: a block replaces an empty table with a walk flush", "[page_table]") {
  // Facts 4.6 step 5. The engine never leaves empty tables itself, so make one by clearing a
  // leaf behind its back (as if another agent had).
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  REQUIRE(mapOne(*t, 2 * MiB + 0x3000, 0x3000, 0x1000, RW).error == Errno::OK);
  auto steps = t->walk(2 * MiB + 0x3000);
  REQUIRE(steps.size() == 4);
  fx.mem->store64(steps[3].descriptorPa, 0);
  uint64_t pages = t->tablePagesInUse();

  auto r = mapOne(*t, 2 * MiB, 0x8000'0000, 2 * MiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(r.bytesMapped == 2 * MiB);
  CHECK(leafLevel(*t, 2 * MiB) == 2);
  CHECK(t->tablePagesInUse() == pages - 1);
  CHECK(sameInvalidations(r.invalidations, {{2 * MiB, 2 * MiB, 4 * KiB, false}}));
}

TEST_CASE("PageTable: ENOMEM leaves earlier mappings and no empty tables", "[page_table]") {
  PageTableFixture fx;
  BudgetFrames budget(fx.frames, 4 * KiB * 3);  // PGD + 2 tables
  TableConfig config = s1Config4K();
  config.lifetime = TableLifetime::EAGER;  // frees tables once empty
  auto t = fx.make(config, budget);
  // 0..4K needs L1, L2, L3 tables: the L3 one is missing.
  auto r = mapOne(*t, 0, 0x1000, 0x1000, RW);
  CHECK(r.error == Errno::NOMEM);
  CHECK(r.bytesMapped == 0);
  CHECK(t->tablePagesInUse() == 1);
  CHECK(budget.budget == 2 * 4 * KiB);
  // The L1 table was freed last, so one walk flush covers its whole span.
  CHECK(sameInvalidations(r.invalidations, {{0, 512 * GiB, 4 * KiB, false}}));
  // A 2M block needs only two tables.
  r = mapOne(*t, 0, 0x20'0000, 2 * MiB, RW);
  CHECK(r.error == Errno::OK);
  // Crossing into the next 1G slot with pages needs two more tables: the head stays mapped.
  r = mapOne(*t, GiB - 2 * MiB, 0, 2 * MiB + 0x2000, RW);
  CHECK(r.error == Errno::NOMEM);
  CHECK(r.bytesMapped == 2 * MiB);
  CHECK(lookup(*t, GiB - 1) == 2 * MiB - 1);
  CHECK(lookup(*t, GiB) == NOT_MAPPED);
  CHECK(t->tablePagesInUse() == 3);
}

TEST_CASE("PageTable: unmap frees empty tables and coalesces invalidations", "[page_table]") {
  PageTableFixture fx;
  TableConfig eager = s1Config4K();
  eager.lifetime = TableLifetime::EAGER;  // frees tables once empty
  auto t = fx.make(eager);
  uint64_t used = fx.frames.usedBytes();

  SECTION("pages in one table: one coalesced leaf entry") {
    REQUIRE(mapOne(*t, 0x40'0000, 0x1000'0000, 16 * 0x1000, RW).error == Errno::OK);
    auto u = unmapOne(*t, 0x40'4000, 8 * 0x1000);
    CHECK(u.error == Errno::OK);
    CHECK(u.bytesUnmapped == 0x8000);
    CHECK(sameInvalidations(u.invalidations, {{0x40'4000, 0x8000, 4 * KiB, true}}));
    CHECK(lookup(*t, 0x40'3000) == 0x1000'3000);
    CHECK(lookup(*t, 0x40'4000) == NOT_MAPPED);
    CHECK(lookup(*t, 0x40'c000) == 0x1000'c000);
  }
  SECTION("mixed leaf sizes: one entry per granule run") {
    REQUIRE(mapOne(*t, GiB - 4 * MiB, GiB - 4 * MiB, 4 * MiB + GiB + 0x2000, RW).error ==
            Errno::OK);
    REQUIRE(mapOne(*t, 0, 0, 0x1000, RW).error == Errno::OK);  // keeps the L1 table alive
    auto u = unmapOne(*t, GiB - 4 * MiB, 4 * MiB + GiB + 0x2000);
    CHECK(u.bytesUnmapped == 4 * MiB + GiB + 0x2000);
    // Two 2M blocks (their L2 table stays: it also holds page 0's L3 table), one 1G block,
    // then two pages whose L3 and L2 tables are freed: the walk flush of the freed L2 table
    // absorbs the pages' leaf entry and the L3 table's walk entry.
    CHECK(sameInvalidations(u.invalidations, {{GiB - 4 * MiB, 4 * MiB, 2 * MiB, true},
                                              {GiB, GiB, GiB, true},
                                              {2 * GiB, GiB, 4 * KiB, false}}));
    INFO(describe(u.invalidations));
  }
  SECTION("a whole 1G of pages: the freed tables' walk flush covers everything") {
    REQUIRE(mapOne(*t, 0, 0, 0x1000, RW).error == Errno::OK);
    // A pa aligned to 4K only: all pages.
    REQUIRE(mapOne(*t, GiB, 0x1000, GiB, Prot::READ).error == Errno::OK);
    REQUIRE(leafLevel(*t, GiB) == 3);
    uint64_t pages = t->tablePagesInUse();
    CHECK(pages == 1 + 1 + 2 + 1 + 512);  // PGD, L1, two L2, L3 for page 0, 512 L3
    auto u = unmapOne(*t, GiB, GiB);
    CHECK(u.bytesUnmapped == GiB);
    CHECK(sameInvalidations(u.invalidations, {{GiB, GiB, 4 * KiB, false}}));
    INFO(describe(u.invalidations));
    CHECK(t->tablePagesInUse() == 1 + 1 + 1 + 1);
    auto last = unmapOne(*t, 0, 0x1000);
    CHECK(sameInvalidations(last.invalidations, {{0, 512 * GiB, 4 * KiB, false}}));
    CHECK(t->tablePagesInUse() == 1);
    CHECK(fx.frames.usedBytes() == used);
  }
}

TEST_CASE("PageTable: unmap stops at a hole and reports how far it got", "[page_table]") {
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  REQUIRE(mapOne(*t, 0x10'0000, 0x2000'0000, 0x3000, RW).error == Errno::OK);
  REQUIRE(mapOne(*t, 0x10'4000, 0x2000'4000, 0x1000, RW).error == Errno::OK);
  UnmapRange ranges[] = {{0x10'0000, 0x8000}, {0x10'4000, 0x1000}};
  auto u = t->unmap(ranges);
  CHECK(u.error == Errno::NOENT);
  CHECK(u.stoppedIndex == size_t(0));
  CHECK(u.bytesUnmapped == 0x3000);
  CHECK(lookup(*t, 0x10'4000) == 0x2000'4000);
  // Nothing mapped at all on the way down.
  u = unmapOne(*t, 64 * GiB, 0x1000);
  CHECK(u.error == Errno::NOENT);
  CHECK(u.bytesUnmapped == 0);
  // Argument errors.
  CHECK(unmapOne(*t, 0x10'4800, 0x1000).error == Errno::INVAL);
  CHECK(unmapOne(*t, 0x10'4000, 0).error == Errno::INVAL);
  CHECK(unmapOne(*t, uint64_t(1) << 48, 0x1000).error == Errno::RANGE);
  CHECK(lookup(*t, 0x10'4000) == 0x2000'4000);
}

TEST_CASE("PageTable: partial unmap of a larger leaf follows the policy", "[page_table]") {
  PageTableFixture fx;
  SECTION("REFUSE (Linux >= 6.14): nothing goes") {
    auto t = fx.make(s1Config4K(PartialUnmap::REFUSE));
    REQUIRE(mapOne(*t, 2 * MiB, 0x8000'0000, 2 * MiB, RW).error == Errno::OK);
    REQUIRE(mapOne(*t, 0x1000, 0x1000, 0x1000, RW).error == Errno::OK);
    UnmapRange ranges[] = {{0x1000, 0x1000}, {2 * MiB + 0x2000, 0x1000}};
    auto u = t->unmap(ranges);
    CHECK(u.error == Errno::INVAL);
    CHECK(u.stoppedIndex == size_t(1));
    CHECK(u.bytesUnmapped == 0x1000);  // the first range only
    CHECK(lookup(*t, 2 * MiB + 0x2000) == 0x8000'2000);
    CHECK(leafLevel(*t, 2 * MiB) == 2);
  }
  SECTION("SPLIT (Linux < 6.14): the block becomes a table missing the piece") {
    auto t = fx.make(s1Config4K(PartialUnmap::SPLIT));
    REQUIRE(mapOne(*t, 2 * MiB, 0x8000'0000, 2 * MiB, Prot::READ | Prot::CACHE).error ==
            Errno::OK);
    uint64_t pages = t->tablePagesInUse();
    uint64_t before = t->walk(2 * MiB).back().descriptor;
    auto u = unmapOne(*t, 2 * MiB + 0x2000, 0x1000);
    CHECK(u.error == Errno::OK);
    CHECK(u.bytesUnmapped == 0x1000);
    CHECK(sameInvalidations(u.invalidations, {{2 * MiB + 0x2000, 0x1000, 2 * MiB, true}}));
    CHECK(t->tablePagesInUse() == pages + 1);
    CHECK(lookup(*t, 2 * MiB + 0x2000) == NOT_MAPPED);
    CHECK(lookup(*t, 2 * MiB + 0x1fff) == 0x8000'1fff);
    CHECK(lookup(*t, 2 * MiB + 0x3000) == 0x8000'3000);
    CHECK(leafLevel(*t, 2 * MiB + 0x3000) == 3);
    // The pages keep the block's attributes.
    uint64_t page = t->walk(2 * MiB + 0x3000).back().descriptor;
    CHECK(leafAttributesOf(page) == leafAttributesOf(before));
    // Remap of the partial unmap (the removed selftest step).
    auto r = mapOne(*t, 2 * MiB + 0x2000, 0x2000, 0x1000, Prot::READ);
    CHECK(r.error == Errno::OK);
    CHECK(lookup(*t, 2 * MiB + 0x2000 + 42) == 0x2000 + 42);
  }
  SECTION("SPLIT twice: a page out of a 1G block") {
    auto t = fx.make(s1Config4K(PartialUnmap::SPLIT));
    REQUIRE(mapOne(*t, GiB, GiB, GiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, GiB + 3 * MiB, 0x1000);
    CHECK(u.bytesUnmapped == 0x1000);
    CHECK(sameInvalidations(u.invalidations, {{GiB + 3 * MiB, 0x1000, GiB, true}}));
    CHECK(leafLevel(*t, GiB) == 2);
    CHECK(leafLevel(*t, GiB + 2 * MiB) == 3);
    CHECK(lookup(*t, GiB + 3 * MiB) == NOT_MAPPED);
    CHECK(lookup(*t, GiB + 3 * MiB + 0x1000) == GiB + 3 * MiB + 0x1000);
    CHECK(lookup(*t, 2 * GiB - 1) == 2 * GiB - 1);
  }
  SECTION("SPLIT without a frame is ENOMEM and changes nothing") {
    BudgetFrames budget(fx.frames, 3 * 4 * KiB);
    auto t = fx.make(s1Config4K(PartialUnmap::SPLIT), budget);
    REQUIRE(mapOne(*t, 2 * MiB, 0x8000'0000, 2 * MiB, RW).error == Errno::OK);
    auto u = unmapOne(*t, 2 * MiB, 0x1000);
    CHECK(u.error == Errno::NOMEM);
    CHECK(u.bytesUnmapped == 0);
    CHECK(leafLevel(*t, 2 * MiB) == 2);
  }
  SECTION("WHOLE_LEAF (generic_pt): the whole leaf goes and counts") {
    auto t = fx.make(s1Config4K(PartialUnmap::WHOLE_LEAF));
    REQUIRE(mapOne(*t, 2 * MiB, 0x8000'0000, 2 * MiB, RW).error == Errno::OK);
    REQUIRE(mapOne(*t, 0x1000, 0x1000, 0x1000, RW).error == Errno::OK);
    auto u = unmapOne(*t, 2 * MiB + 0x2000, 0x1000);
    CHECK(u.error == Errno::OK);
    CHECK(u.bytesUnmapped == 2 * MiB);
    CHECK(sameInvalidations(u.invalidations, {{2 * MiB, 2 * MiB, 2 * MiB, true}}));
    CHECK(lookup(*t, 2 * MiB) == NOT_MAPPED);
    CHECK(lookup(*t, 0x1000) == 0x1000);
  }
}

TEST_CASE("PageTable: walk returns the descriptors a hardware walk reads", "[page_table]") {
  PageTableFixture fx;
  TableConfig config = s1Config4K();
  config.format = Format::STAGE2;
  config.ias = config.oas = 40;  // concatenated: starts at level 1
  auto t = fx.make(config);
  CHECK(t->walk(uint64_t(1) << 40).size() == 0);
  auto empty = t->walk(0x3'4000'0000);
  REQUIRE(empty.size() == 1);
  CHECK(empty[0].level == 1);
  CHECK(empty[0].descriptorPa == t->rootPa() + 13 * 8);  // index 13 of the 1024-entry PGD
  CHECK(empty[0].descriptor == 0);

  REQUIRE(mapOne(*t, 0x3'4000'0000 + 0x5000, 0x7000, 0x1000, RW | Prot::CACHE).error ==
          Errno::OK);
  auto steps = t->walk(0x3'4000'0000 + 0x5000);
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].level == 1);
  CHECK(steps[1].level == 2);
  CHECK(steps[2].level == 3);
  CHECK(isTable(steps[0].descriptor, 1));
  CHECK(steps[1].descriptorPa == decodeOutputAddress(steps[0].descriptor, config.granule));
  CHECK(steps[2].descriptorPa ==
        decodeOutputAddress(steps[1].descriptor, config.granule) + 5 * 8);
  CHECK(steps[2].descriptor == 0x0000'0000'0000'77ff);  // S2 RW|CACHE page at 0x7000
}

TEST_CASE("PageTable: dirty tracking with the HD quirk", "[page_table][dirty]") {
  PageTableFixture fx;
  TableConfig config = s1Config4K();
  config.hd = true;
  auto t = fx.make(config);
  REQUIRE(mapOne(*t, 0, 0x10'0000, 8 * 0x1000, RW).error == Errno::OK);
  REQUIRE(mapOne(*t, 8 * 0x1000, 0x20'0000, 8 * 0x1000, Prot::READ).error == Errno::OK);
  REQUIRE(mapOne(*t, 2 * MiB, 0x40'0000, 2 * MiB, RW).error == Errno::OK);

  auto scan = [&](uint64_t iova, uint64_t size, bool noClear) {
    auto r = t->readAndClearDirty(iova, size, noClear);
    REQUIRE(r.is<DirtyBitmap>());
    return kj::mv(r.get<DirtyBitmap>());
  };

  // Writable leaves start writable-dirty (facts 4.9).
  auto first = scan(0, 4 * MiB, true);
  CHECK(first.pages == 1024);
  CHECK(first.count() == 8 + 512);
  CHECK(first.test(0));
  CHECK(!first.test(8));   // read-only
  CHECK(!first.test(16));  // hole
  CHECK(first.test(512));
  CHECK(first.test(1023));
  // noClear left them dirty; now read and clear.
  CHECK(scan(0, 4 * MiB, false).count() == 8 + 512);
  CHECK(scan(0, 4 * MiB, false).count() == 0);
  CHECK(t->walk(0).back().descriptor == 0x0008'0000'0010'0ec3);  // DBM + RDONLY: clean

  // The SMMU's HTTU marks a write by clearing AP[2].
  auto page3 = t->walk(3 * 0x1000).back();
  fx.mem->store64(page3.descriptorPa, page3.descriptor & ~PTE_AP_RDONLY.mask());
  auto block = t->walk(2 * MiB).back();
  fx.mem->store64(block.descriptorPa, block.descriptor & ~PTE_AP_RDONLY.mask());
  // A scan of part of the block reports only the pages asked for.
  auto part = scan(3 * MiB, MiB, false);
  CHECK(part.count() == 256);
  auto again = scan(0, 4 * MiB, false);
  CHECK(again.count() == 1);
  CHECK(again.test(3));
  CHECK(lookup(*t, 3 * 0x1000) == 0x10'3000);  // still mapped, still writable
  CHECK(!isDirty(t->walk(3 * 0x1000).back().descriptor));

  SECTION("needs stage 1 with HD, and an aligned range inside IAS") {
    CHECK(t->readAndClearDirty(0x800, 0x1000, false).get<Errno>() == Errno::INVAL);
    CHECK(t->readAndClearDirty(uint64_t(1) << 48, 0x1000, false).get<Errno>() == Errno::INVAL);
    auto plain = fx.make(s1Config4K());
    CHECK(plain->readAndClearDirty(0, 0x1000, false).get<Errno>() == Errno::INVAL);
    TableConfig s2 = s1Config4K();
    s2.format = Format::STAGE2;
    auto t2 = fx.make(s2);
    CHECK(t2->readAndClearDirty(0, 0x1000, false).get<Errno>() == Errno::INVAL);
  }
}

TEST_CASE("PageTable: 64K granule with 52-bit addresses", "[page_table]") {
  PageTableFixture fx;
  TableConfig config = s1Config4K();
  config.granule = Granule::SIZE_64K;
  config.ias = config.oas = 52;
  auto t = fx.make(config);
  // A 4T block at level 1, with a PA above 2^48.
  uint64_t pa = uint64_t(0xc) << 48;
  auto r = mapOne(*t, 8 * TiB, pa, 4 * TiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(leafLevel(*t, 8 * TiB) == 1);
  CHECK(lookup(*t, 8 * TiB + 0x1234'5678) == pa + 0x1234'5678);
  // A 64K page mapping the top of the PA space.
  uint64_t top = (uint64_t(1) << 52) - 64 * KiB;
  r = mapOne(*t, top, top, 64 * KiB, RW);
  CHECK(r.error == Errno::OK);
  CHECK(lookup(*t, top + 42) == top + 42);
  CHECK(leafLevel(*t, top) == 3);
  CHECK(unmapOne(*t, 8 * TiB, 4 * TiB).bytesUnmapped == 4 * TiB);
  CHECK(unmapOne(*t, top, 64 * KiB).bytesUnmapped == 64 * KiB);
  // A 4T-page unmap and a 64K-page unmap free no table: the L2 and L3 tables stay.
  CHECK(t->tablePagesInUse() == 3);
}

TEST_CASE("PageTable: unmap into a reused result resets it and tags each range",
          "[page_table]") {
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  REQUIRE(mapOne(*t, 0x1000, 0x9000'1000, 0x4000, RW).error == Errno::OK);
  UnmapResult u;
  uint64_t reads = t->stats().unmapLastLevelReads;
  // One page: bytes, one add_page-sized leaf invalidation, one last-level read (facts 1.1).
  UnmapRange one{0x2000, 0x1000};
  t->unmap(kj::arrayPtr(&one, 1), u);
  CHECK(u.error == Errno::OK);
  CHECK(u.stoppedIndex == nullptr);
  CHECK(u.bytesUnmapped == 0x1000);
  INFO("got " << describe(u.invalidations));
  CHECK(sameInvalidations(u.invalidations, {{0x2000, 0x1000, 0x1000, true}}));
  CHECK(t->stats().unmapLastLevelReads == reads + 1);
  CHECK(lookup(*t, 0x2000) == NOT_MAPPED);
  CHECK(lookup(*t, 0x3000) == 0x9000'3000);
  // The same result again: what the first call left is gone.
  one.iova = 0x3000;
  t->unmap(kj::arrayPtr(&one, 1), u);
  CHECK(u.bytesUnmapped == 0x1000);
  CHECK(sameInvalidations(u.invalidations, {{0x3000, 0x1000, 0x1000, true}}));
  CHECK(u.invalidations[0].range == 0);
  CHECK(t->stats().unmapLastLevelReads == reads + 2);
  // A page already unmapped: the hole is read once, nothing is unmapped (WARN_ON(!pte)).
  t->unmap(kj::arrayPtr(&one, 1), u);
  CHECK(u.error == Errno::NOENT);
  CHECK(u.stoppedIndex == size_t(0));
  CHECK(u.bytesUnmapped == 0);
  CHECK(u.invalidations.size() == 0);
  CHECK(t->stats().unmapLastLevelReads == reads + 3);
  // Two ranges, the second a hole: the first's entry carries range 0, then the stop.
  UnmapRange two[] = {{0x1000, 0x1000}, {0x2000, 0x1000}};
  t->unmap(two, u);
  CHECK(u.error == Errno::NOENT);
  CHECK(u.stoppedIndex == size_t(1));
  CHECK(u.bytesUnmapped == 0x1000);
  CHECK(sameInvalidations(u.invalidations, {{0x1000, 0x1000, 0x1000, true}}));
  CHECK(u.invalidations[0].range == 0);
  // A run of pages and a single page: two entries, never merged across ranges though
  // contiguous, each tagged with its range.
  REQUIRE(mapOne(*t, 0x10'0000, 0x9010'0000, 0x3000, RW).error == Errno::OK);
  UnmapRange mixed[] = {{0x10'0000, 0x2000}, {0x10'2000, 0x1000}};
  t->unmap(mixed, u);
  CHECK(u.error == Errno::OK);
  CHECK(u.bytesUnmapped == 0x3000);
  INFO("got " << describe(u.invalidations));
  CHECK(sameInvalidations(u.invalidations,
                          {{0x10'0000, 0x2000, 0x1000, true}, {0x10'2000, 0x1000, 0x1000, true}}));
  CHECK(u.invalidations[0].range == 0);
  CHECK(u.invalidations[1].range == 1);
  // The returning form gives the same as a fresh result.
  REQUIRE(mapOne(*t, 0x10'0000, 0x9010'0000, 0x3000, RW).error == Errno::OK);
  auto fresh = t->unmap(mixed);
  CHECK(fresh.bytesUnmapped == 0x3000);
  CHECK(sameInvalidations(fresh.invalidations,
                          {{0x10'0000, 0x2000, 0x1000, true}, {0x10'2000, 0x1000, 0x1000, true}}));
}

TEST_CASE("PageTable: a table descriptor pointing outside memory is an error, not a read",
          "[page_table]") {
  // Tables live in [BASE, BASE + SIZE); a last-level table must fit there whole.
  const PhysAddr base = PageTableFixture::BASE, end = base + PageTableFixture::SIZE;
  struct Case {
    PhysAddr table;
    bool inside;
  };
  const Case cases[] = {
      {end - 0x1000, true},  // the last page of memory
      {base, true},          // the first (the PGD: what it holds reads as a level-3 table)
      {end, false},          // just past the end
      {base - 0x1000, false},
      {uint64_t(1) << 40, false},
  };
  for (const Case& c : cases) {
    INFO("table at 0x" << kj::str(kj::hex(c.table)).cStr());
    PageTableFixture fx;
    auto t = fx.make(s1Config4K());
    REQUIRE(mapOne(*t, 0x20'0000, 0x9000'0000, 0x1000, RW).error == Errno::OK);
    // Rewrite the level-2 descriptor (a table descriptor: address | 3) to point at c.table.
    auto steps = t->walk(0x20'0000);
    REQUIRE(steps.size() == 4);
    REQUIRE(steps[2].level == 2);
    fx.mem->store64(steps[2].descriptorPa, c.table | 3);
    const MapRun page{0x20'1000, 0x9000'1000, 0x1000, RW};
    const UnmapRange range{0x20'0000, 0x1000};
    if (c.table == base) {
      CHECK_NOTHROW(t->iovaToPhys(0x20'0000));
    } else if (c.inside) {
      fx.mem->zero(c.table, 0x1000);  // an empty table there
      CHECK(lookup(*t, 0x20'0000) == NOT_MAPPED);
      CHECK(t->unmap(kj::arrayPtr(&range, 1)).error == Errno::NOENT);
    } else {
      CHECK_THROWS(t->iovaToPhys(0x20'0000));
      CHECK_THROWS(t->map(kj::arrayPtr(&page, 1)));
      CHECK_THROWS(t->unmap(kj::arrayPtr(&range, 1)));
    }
    // Leave a valid tree for the destructor.
    fx.mem->store64(steps[2].descriptorPa, 0);
  }
}

TEST_CASE("PageTable: a table filled whole holds consecutive leaves", "[page_table]") {
  PageTableFixture fx;
  SECTION("4K granule, a 2 MiB slot of pages") {
    auto t = fx.make(s1Config4K());
    // pa 4K-aligned only: the L2 slot becomes a table of 512 pages, written whole.
    REQUIRE(mapOne(*t, 2 * MiB, 0x1'2345'6000, 2 * MiB, RW).error == Errno::OK);
    // Stage 1 READ|WRITE (facts 4.2): nG 0x800 | AF 0x400 | SH outer 0x200 | AP[1] 0x40, then
    // the address and the page type 3.
    for (uint64_t i : {0, 1, 255, 511}) {
      auto steps = t->walk(2 * MiB + i * 0x1000);
      REQUIRE(steps.size() == 4);
      CHECK(steps[3].descriptor == ((0x1'2345'6000 + i * 0x1000) | 0xe40 | 3));
    }
  }
  SECTION("64K granule, a 512 MiB slot of pages crossing PA 2^48") {
    TableConfig config = s1Config4K();
    config.granule = Granule::SIZE_64K;
    config.ias = config.oas = 52;
    auto t = fx.make(config);
    // 8192 pages of 64K from 2^48 - 256 MiB: the upper half's PA[51:48] = 1 goes into
    // PTE[15:12] (facts 4.3), the lower half's into nothing.
    const uint64_t pa = (uint64_t(1) << 48) - 256 * MiB, iova = 8 * TiB;
    REQUIRE(mapOne(*t, iova, pa, 512 * MiB, RW).error == Errno::OK);
    struct Leaf {
      uint64_t page, oa;
    };
    const Leaf leaves[] = {
        {0, 0xffff'f000'0000},       // 2^48 - 256 MiB
        {4095, 0xffff'ffff'0000},    // the last page below 2^48
        {4096, 0x1000},              // 2^48: address bits [47:16] zero, PA[51:48] = 1
        {8191, 0x0fff'0000 | 0x1000},      // 2^48 + 256 MiB - 64K
    };
    for (const Leaf& l : leaves) {
      INFO("page " << l.page);
      auto steps = t->walk(iova + l.page * 64 * KiB);
      REQUIRE(steps.size() > 0);
      CHECK(steps.back().level == 3);
      CHECK(steps.back().descriptor == (l.oa | 0xe40 | 3));
      CHECK(lookup(*t, iova + l.page * 64 * KiB + 42) == pa + l.page * 64 * KiB + 42);
    }
  }
}

TEST_CASE("PageTable: stats count descriptor writes and table pages", "[page_table]") {
  PageTableFixture fx;
  auto t = fx.make(s1Config4K());
  CHECK(t->stats().tablesAllocated == 1);
  REQUIRE(mapOne(*t, 0, 0, 4 * 0x1000, RW).error == Errno::OK);
  // Three table descriptors and four leaves.
  CHECK(t->stats().ptesWritten == 3 + 4);
  CHECK(t->stats().tablesAllocated == 4);
  CHECK(t->tablePagesInUse() == 4);
  REQUIRE(unmapOne(*t, 0, 4 * 0x1000).bytesUnmapped == 4 * 0x1000);
  // Four leaf clears; a 4K-page unmap frees no table (linux lifetime).
  CHECK(t->stats().ptesWritten == 7 + 4);
  CHECK(t->stats().tablesFreed == 0);
  CHECK(t->tablePagesInUse() == 4);
  // Eager: four leaf clears and three table clears.
  TableConfig eager = s1Config4K();
  eager.lifetime = TableLifetime::EAGER;
  auto e = fx.make(eager);
  REQUIRE(mapOne(*e, 0, 0, 4 * 0x1000, RW).error == Errno::OK);
  REQUIRE(unmapOne(*e, 0, 4 * 0x1000).bytesUnmapped == 4 * 0x1000);
  CHECK(e->stats().ptesWritten == 7 + 7);
  CHECK(e->stats().tablesFreed == 3);
  CHECK(e->tablePagesInUse() == 1);
}

TEST_CASE("PageTable: no table page leaks", "[page_table][leak]") {
  PageTableFixture fx;
  uint64_t initial = fx.frames.usedBytes();
  auto granule = GENERATE(Granule::SIZE_4K, Granule::SIZE_16K, Granule::SIZE_64K);
  auto format = GENERATE(Format::STAGE1, Format::STAGE2);
  auto lifetime = GENERATE(TableLifetime::LINUX, TableLifetime::EAGER);
  DYNAMIC_SECTION(formatName(format) << " granule " << uint32_t(granule)
                                     << (lifetime == TableLifetime::LINUX ? " linux" : " eager")) {
    {
      TableConfig config = s1Config4K();
      config.lifetime = lifetime;
      config.format = format;
      config.granule = granule;
      config.ias = config.oas = 40;
      auto t = fx.make(config);
      uint64_t pgdBytes = t->tableBytesInUse();
      uint64_t page = uint64_t(granule);
      // Scattered pages, blocks and runs across many tables.
      MapRun runs[] = {
          {0, 0, 256 * page, RW},
          {GiB, 0x1000'0000, GiB, RW},
          {5 * GiB + 7 * page, 7 * page, 3000 * page, Prot::READ},
          {(uint64_t(1) << 40) - 1024 * page, 0, 1024 * page, Prot::WRITE},
      };
      auto r = t->map(runs);
      REQUIRE(r.error == Errno::OK);
      CHECK(t->tablePagesInUse() > 3);
      // Some of it map and unmap again in pieces, then unmap everything run by run.
      for (uint64_t i = 0; i < 256; i += 2) {
        REQUIRE(unmapOne(*t, i * page, page).bytesUnmapped == page);
      }
      for (uint64_t i = 0; i < 256; i += 2) {
        REQUIRE(mapOne(*t, i * page, i * page, page, RW).error == Errno::OK);
      }
      for (auto& run : runs) {
        auto u = unmapOne(*t, run.iova, run.size);
        CHECK(u.error == Errno::OK);
        CHECK(u.bytesUnmapped == run.size);
      }
      if (lifetime == TableLifetime::EAGER) {
        CHECK(t->tablePagesInUse() == 1);
        CHECK(t->tableBytesInUse() == pgdBytes);
        CHECK(fx.frames.usedBytes() == initial + pgdBytes);
      }
      CHECK(fx.frames.usedBytes() == initial + t->tableBytesInUse());
      // Leave some mappings for the destructor to free.
      REQUIRE(t->map(runs).error == Errno::OK);
      CHECK(t->stats().tablesAllocated - t->stats().tablesFreed == t->tablePagesInUse());
    }
    CHECK(fx.frames.usedBytes() == initial);
  }
}

}  // namespace
}  // namespace nb::pt
