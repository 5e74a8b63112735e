// The page_table component through its capability: the same sequence gives byte-identical
// tables inline and process-placed; frames come from and return to hw/mem; the table estimate
// and its top-up path.

#include "components/page_table/arm_lpae/component.h"
#include "components/page_table/arm_lpae/geometry.h"
#include "interfaces/page-table.capnp.h"
#include "tests/system/compose-testing.h"

#include <random>

namespace nb {
namespace {

kj::String manifest(kj::StringPtr placement, kj::StringPtr policy = "refuse",
                    kj::StringPtr extra = "") {
  return kj::str("[memory]\nbase = 0x40000000\nsize = \"64MiB\"\n"
                 "[components.page_table]\nimpl = \"page_table/arm_lpae\"\nplacement = \"", placement,
                 "\"\npartial_unmap = \"", policy, "\"\n", extra);
}

uint64_t stat(testing::TestSystem& sys, kj::StringPtr instance, kj::StringPtr name) {
  for (auto& s : sys.stats()) {
    if (s.name != instance) continue;
    for (auto& c : s.counters) {
      if (c.name == name) return c.value;
    }
  }
  KJ_FAIL_REQUIRE("no counter", instance, name);
}

rpc::PageTable::Client create(testing::TestSystem& sys, rpc::Format format, rpc::Granule granule,
                              uint8_t ias, uint8_t oas) {
  auto engine = sys.main<rpc::PageTableEngine>("page_table");
  auto req = engine.createRequest();
  auto c = req.initConfig();
  c.setFormat(format);
  c.setGranule(granule);
  c.setIas(ias);
  c.setOas(oas);
  auto response = req.send().wait(sys.io.waitScope);
  REQUIRE(response.getErrno() == rpc::Errno::OK);
  return response.getTable();
}

// A fixed pseudo-random workload of batched maps and unmaps over a stage-1 and a stage-2 table.
kj::String workload(testing::TestSystem& sys) {
  kj::Vector<kj::String> log;
  auto s1 = create(sys, rpc::Format::STAGE1, rpc::Granule::SIZE4K, 48, 48);
  auto s2 = create(sys, rpc::Format::STAGE2, rpc::Granule::SIZE16K, 40, 40);
  std::mt19937_64 rng(42);
  for (int round = 0; round < 30; round++) {
    for (auto* table : {&s1, &s2}) {
      uint64_t page = table == &s1 ? 4096 : 16384;
      auto req = table->mapRequest();
      auto runs = req.initRuns(8);
      for (auto r : runs) {
        uint64_t iova = (rng() % 4096) * page * 8;
        r.setIova(iova);
        r.setPa(0x40000000 + (rng() % 512) * page);
        r.setSize(page * (1 + rng() % 8));
        r.initProt().setRead(true);
        r.getProt().setWrite(rng() & 1);
      }
      auto m = req.send().wait(sys.io.waitScope);
      log.add(kj::str("map ", m.getErrno(), " ", m.getBytesMapped(), " ", m.getFailedIndex()));
      auto ureq = table->unmapRequest();
      auto ranges = ureq.initRanges(2);
      for (auto r : ranges) {
        r.setIova((rng() % 4096) * page * 8);
        r.setSize(page * (1 + rng() % 4));
      }
      auto u = ureq.send().wait(sys.io.waitScope);
      log.add(kj::str("unmap ", u.getErrno(), " ", u.getBytesUnmapped(), " ", u.getInvalidations().size()));
    }
  }
  return kj::strArray(log, "\n");
}

TEST_CASE("PageTable component: the same sequence builds byte-identical tables inline and in a process",
          "[page_table][placement]") {
  kj::String logs[2];
  kj::Array<kj::byte> images[2];
  const char* placements[] = {"inline", "process"};
  for (int i = 0; i < 2; i++) {
    testing::TestSystem sys(manifest(placements[i]));
    logs[i] = workload(sys);
    images[i] = kj::heapArray(sys.composer.memory().bytes().asConst());
  }
  CHECK(logs[0] == logs[1]);
  REQUIRE(images[0].size() == images[1].size());
  CHECK(memcmp(images[0].begin(), images[1].begin(), images[0].size()) == 0);
}

TEST_CASE("PageTable component: table_lifetime — linux keeps a 4K unmap's tables, eager frees "
          "them",
          "[page_table][linux]") {
  for (kj::StringPtr placement : {"inline"_kj, "process"_kj}) {
    for (kj::StringPtr lifetime : {"linux"_kj, "eager"_kj}) {
      DYNAMIC_SECTION(placement.cStr() << " " << lifetime.cStr()) {
        testing::TestSystem sys(
            manifest(placement, "refuse", kj::str("table_lifetime = \"", lifetime, "\"\n")));
        auto t = create(sys, rpc::Format::STAGE1, rpc::Granule::SIZE4K, 48, 48);
        auto m = t.mapRequest();
        auto run = m.initRuns(1)[0];
        run.setIova(0x200000);
        run.setPa(0x40001000);
        run.setSize(0x1000);
        run.initProt().setRead(true);
        REQUIRE(m.send().wait(sys.io.waitScope).getErrno() == rpc::Errno::OK);
        auto u = t.unmapRequest();
        auto range = u.initRanges(1)[0];
        range.setIova(0x200000);
        range.setSize(0x1000);
        auto r = u.send().wait(sys.io.waitScope);
        REQUIRE(r.getInvalidations().size() == 1);
        auto inv = r.getInvalidations()[0];
        if (lifetime == "linux") {
          // add_page(iova, 4K); PGD, L1, L2 and L3 stay.
          CHECK(inv.getLeaf());
          CHECK(inv.getSize() == 0x1000);
          CHECK(stat(sys, "page_table", "table_pages_in_use") == 4);
        } else {
          // The emptied L3, L2 and L1 tables freed: one walk flush of the L1 table's 512 GiB.
          CHECK(!inv.getLeaf());
          CHECK(inv.getSize() == uint64_t(512) << 30);
          CHECK(stat(sys, "page_table", "table_pages_in_use") == 1);
        }
      }
    }
  }
}

TEST_CASE("PageTable component: table pages come from hw/mem and all return", "[page_table][memory]") {
  auto placement = GENERATE(as<std::string>(), "inline", "process");
  DYNAMIC_SECTION(placement) {
    testing::TestSystem sys(manifest(placement.c_str()));
    auto table = create(sys, rpc::Format::STAGE1, rpc::Granule::SIZE4K, 48, 48);
    auto req = table.mapRequest();
    auto run = req.initRuns(1)[0];
    run.setIova(0x10000000);
    run.setPa(0x40000000);
    run.setSize(8 << 20);  // IOVA and PA 2M aligned: four 2M blocks
    run.initProt().setRead(true);
    REQUIRE(req.send().wait(sys.io.waitScope).getBytesMapped() == 8 << 20);
    CHECK(sys.composer.frames().usedBytes() == 3 * 4096);  // PGD, level 1, level 2: exactly
    auto ureq = table.unmapRequest();
    auto r = ureq.initRanges(1)[0];
    r.setIova(0x10000000);
    r.setSize(8 << 20);
    CHECK(ureq.send().wait(sys.io.waitScope).getBytesUnmapped() == 8 << 20);
    table.destroyRequest().send().wait(sys.io.waitScope);
    CHECK(sys.composer.frames().usedBytes() == 0);
  }
}

TEST_CASE("PageTable component: 1 GiB of 4K pages in one batched call", "[page_table]") {
  testing::TestSystem sys(manifest("process"));
  auto table = create(sys, rpc::Format::STAGE1, rpc::Granule::SIZE4K, 48, 48);
  auto req = table.mapRequest();
  auto run = req.initRuns(1)[0];
  run.setIova(0x1000);  // page aligned only: every leaf is a 4K page
  run.setPa(0x40001000);
  run.setSize(32 << 20);
  run.initProt().setRead(true);
  auto m = req.send().wait(sys.io.waitScope);
  CHECK(m.getErrno() == rpc::Errno::OK);
  CHECK(m.getBytesMapped() == 32 << 20);
  auto lookup = table.iovaToPhysRequest();
  lookup.setIova(0x1000 + (17 << 20) + 0x123);
  CHECK(lookup.send().wait(sys.io.waitScope).getPa() == 0x40001000 + (17 << 20) + 0x123);
}

TEST_CASE("PageTable component: out of frames is eNoMem with exact progress, never an abort",
          "[page_table][memory]") {
  // 1 MiB of memory: room for a few hundred table pages only.
  testing::TestSystem sys("[memory]\nbase = 0x40000000\nsize = \"1MiB\"\n"
                          "[components.page_table]\nimpl = \"page_table/arm_lpae\"\n");
  auto table = create(sys, rpc::Format::STAGE1, rpc::Granule::SIZE4K, 48, 48);
  auto req = table.mapRequest();
  auto runs = req.initRuns(400);
  for (auto i : kj::indices(runs)) {
    runs[i].setIova(uint64_t(i) << 21);  // one page in each of 400 2M regions: 400 L3 tables
    runs[i].setPa(0x40000000);
    runs[i].setSize(4096);
    runs[i].initProt().setRead(true);
  }
  auto m = req.send().wait(sys.io.waitScope);
  CHECK(m.getErrno() == rpc::Errno::E_NO_MEM);
  CHECK(m.getFailedIndex() > 100);
  CHECK(m.getBytesMapped() == uint64_t(m.getFailedIndex()) * 4096);
  // Everything before the failure really is mapped.
  auto lookup = table.iovaToPhysRequest();
  lookup.setIova((uint64_t(m.getFailedIndex()) - 1) << 21);
  CHECK(lookup.send().wait(sys.io.waitScope).getErrno() == rpc::Errno::OK);
}

TEST_CASE("PageTable component: the table estimate bounds what the greedy block split needs", "[page_table]") {
  auto g = pt::makeGeometry(pt::Format::STAGE1, pt::Granule::SIZE_4K, 48, 48).get<pt::Geometry>();
  // IOVA and PA congruent only modulo 4K: 1 GiB of pages crossing a 1G boundary needs exactly
  // 513 level-3 tables, 2 level-2 and 1 level-1 table.
  CHECK(pt::tablesForRun(g, 0x1000, 0x40002000, 1 << 30) == 513 + 2 + 1);
  // 1 GiB aligned in IOVA and PA: one 1G block, only a level-1 table.
  CHECK(pt::tablesForRun(g, 1 << 30, 1 << 30, 1 << 30) == 1);
  // Head pages, 2M blocks, a tail page: really 5 tables (2 L3, 2 L2, 1 L1); the estimate
  // counts upper levels once per segment, so it may exceed that by a few, never fall short.
  auto mixed = pt::tablesForRun(g, 0x1000, 0x1000, 1 << 30);
  CHECK(mixed >= 5);
  CHECK(mixed <= 5 + 2 * 4);
  auto small = pt::tablesForRun(g, 0x200000, 0x40200000, 0x201000);
  CHECK(small >= 3);
  CHECK(small <= 3 + 4);
}

TEST_CASE("PageTable component: table pages come from below the table's OAS, or create is eNoMem",
          "[page_table][memory][conformance]") {
  // A walker cannot fetch a table beyond its output size (VMSAv8-64: a table address beyond
  // the OAS is an address-size fault; IHI 0070 §5.2/§5.4: a TTB beyond IPS/S2PS is ILLEGAL),
  // and 4K/16K descriptors carry PA[47:12] only (facts 4.3, 4.1). So every table page of an
  // OAS-n table lies below 2^min(n, 48 or 52 for 64K); when memory has none there, creation
  // fails with eNoMem (Linux's io-pgtable: ENOMEM) — never an abort.
  struct Row {
    const char* name;
    uint64_t memBase;
    rpc::Granule granule;
    uint8_t oas;
    bool creates;
  };
  auto row = GENERATE(values<Row>({
      {"memory above 2^36, OAS 36: eNoMem", 1ull << 36, rpc::Granule::SIZE4K, 36, false},
      {"memory straddling 2^40, OAS 40: pages below", (1ull << 40) - (1 << 20),
       rpc::Granule::SIZE4K, 40, true},
      {"memory at 2^48, 4K OAS 48: eNoMem", 1ull << 48, rpc::Granule::SIZE4K, 48, false},
      {"memory at 2^48, 16K OAS 48: eNoMem", 1ull << 48, rpc::Granule::SIZE16K, 48, false},
      {"memory at 2^48, 64K OAS 52: PA[51:48] in the descriptor", 1ull << 48,
       rpc::Granule::SIZE64K, 52, true},
  }));
  auto placement = GENERATE(as<std::string>(), "inline", "process");
  DYNAMIC_SECTION(row.name << ", " << placement) {
    testing::TestSystem sys(kj::str("[memory]\nbase = ", row.memBase, "\nsize = \"64MiB\"\n"
                                    "[components.page_table]\nimpl = \"page_table/arm_lpae\"\n"
                                    "placement = \"", placement.c_str(), "\"\n"));
    // Move the allocator's next-fit cursor past the boundary: without a bound, the next table
    // pages would come from above it.
    auto& frames = sys.composer.frames();
    PhysAddr scratch = KJ_ASSERT_NONNULL(frames.allocFrames(4 << 20, 4096));
    frames.freeFrames(scratch, 4 << 20);
    auto engine = sys.main<rpc::PageTableEngine>("page_table");
    auto req = engine.createRequest();
    auto c = req.initConfig();
    c.setFormat(rpc::Format::STAGE1);
    c.setGranule(row.granule);
    c.setIas(48);
    c.setOas(row.oas);
    auto response = req.send().wait(sys.io.waitScope);
    if (!row.creates) {
      CHECK(response.getErrno() == rpc::Errno::E_NO_MEM);
      CHECK(sys.composer.frames().usedBytes() == 0);
      return;
    }
    REQUIRE(response.getErrno() == rpc::Errno::OK);
    const uint64_t limit = uint64_t(1) << row.oas;
    CHECK(response.getInfo().getRootPa() + response.getInfo().getPgdBytes() <= limit);
    auto table = response.getTable();
    const uint64_t page = row.granule == rpc::Granule::SIZE64K ? 65536 : 4096;
    const uint64_t span = page == 4096 ? (1ull << 21) : (1ull << 29);  // one leaf table each
    auto map = table.mapRequest();
    auto runs = map.initRuns(64);
    for (auto i : kj::indices(runs)) {
      runs[i].setIova(uint64_t(i) * span);
      runs[i].setPa(row.memBase + i * page);
      runs[i].setSize(page);
      runs[i].initProt().setRead(true);
    }
    REQUIRE(map.send().wait(sys.io.waitScope).getErrno() == rpc::Errno::OK);
    for (uint32_t i = 0; i < 64; i++) {
      auto walk = table.walkRequest();
      walk.setIova(uint64_t(i) * span);
      auto steps = walk.send().wait(sys.io.waitScope);
      for (auto step : steps.getSteps()) CHECK(step.getDescriptorPa() < limit);
      auto lookup = table.iovaToPhysRequest();
      lookup.setIova(uint64_t(i) * span + 8);
      CHECK(lookup.send().wait(sys.io.waitScope).getPa() == row.memBase + i * page + 8);
    }
    table.destroyRequest().send().wait(sys.io.waitScope);
  }
}

}  // namespace
}  // namespace nb
