// tests/hw/vm: the memory map as data — MemslotMap lookups and runs, PinCounts against a
// page-by-page reference.

#include "hw/vm/memslots.h"

#include <catch2/catch.hpp>
#include <kj/debug.h>

#include <map>
#include <random>

namespace nb::vm {
namespace {

constexpr uint64_t MiB = 1 << 20;

MemslotMap threeSlots() {
  MemslotMap map;
  map.insert(Memslot{2, 0x4000'0000, 2 * MiB, 0x8100'0000, true, false});
  map.insert(Memslot{0, 0, 1 * MiB, 0x8000'0000, false, true});
  map.insert(Memslot{1, 1 * MiB, 1 * MiB, 0x8020'0000, false, true});  // adjacent to slot 0
  return map;
}

TEST_CASE("MemslotMap: slots by GPA, lookups by id and address", "[vm]") {
  auto map = threeSlots();
  auto slots = map.slots();
  REQUIRE(slots.size() == 3);
  CHECK(slots[0].id == 0);
  CHECK(slots[1].id == 1);
  CHECK(slots[2].id == 2);
  CHECK(map.guestBytes() == 4 * MiB);
  CHECK(KJ_ASSERT_NONNULL(map.find(2)).gpa == 0x4000'0000);
  CHECK(map.find(3) == nullptr);
  CHECK(KJ_ASSERT_NONNULL(map.lookup(0)).id == 0);
  CHECK(KJ_ASSERT_NONNULL(map.lookup(MiB - 1)).id == 0);
  CHECK(KJ_ASSERT_NONNULL(map.lookup(MiB)).id == 1);
  CHECK(map.lookup(2 * MiB) == nullptr);
  CHECK(KJ_ASSERT_NONNULL(map.lookup(0x4000'0000 + 2 * MiB - 1)).id == 2);
  CHECK(map.lookup(0x4000'0000 + 2 * MiB) == nullptr);
  CHECK(KJ_ASSERT_NONNULL(map.firstOverlap(MiB - 4096, 8192)).id == 0);
  CHECK(KJ_ASSERT_NONNULL(map.firstOverlap(MiB - 4096, 8192, uint32_t(0))).id == 1);
  CHECK(map.firstOverlap(2 * MiB, 0x3e00'0000) == nullptr);
}

TEST_CASE("MemslotMap: a GPA range splits into per-slot runs; a hole makes it null", "[vm]") {
  auto map = threeSlots();
  auto runs = KJ_ASSERT_NONNULL(map.runs(MiB - 0x1000, 0x3000));
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].gpa == MiB - 0x1000);
  CHECK(runs[0].pa == 0x8000'0000 + MiB - 0x1000);
  CHECK(runs[0].size == 0x1000);
  CHECK(runs[0].slot->id == 0);
  CHECK(runs[1].gpa == MiB);
  CHECK(runs[1].pa == 0x8020'0000);
  CHECK(runs[1].size == 0x2000);
  CHECK(map.runs(2 * MiB - 8, 16) == nullptr);      // runs off the end of slot 1
  CHECK(map.runs(~uint64_t(0) - 7, 16) == nullptr);  // wraps
  CHECK(map.runs(0, 0) == nullptr);
}

TEST_CASE("MemslotMap: changes keep GPA order; broken preconditions throw", "[vm]") {
  auto map = threeSlots();
  map.move(0, 0x8000'0000);
  CHECK(map.slots()[2].id == 0);
  CHECK(KJ_ASSERT_NONNULL(map.lookup(0x8000'0000)).pa == 0x8000'0000);
  map.setReadonly(1, true);
  CHECK(KJ_ASSERT_NONNULL(map.find(1)).readonly);
  auto gone = map.erase(2);
  CHECK(gone.gpa == 0x4000'0000);
  CHECK(map.slots().size() == 2);
  CHECK(kj::runCatchingExceptions([&]() { map.erase(2); }) != nullptr);
  CHECK(kj::runCatchingExceptions([&]() { map.move(1, 0x8000'0000); }) != nullptr);
  CHECK(kj::runCatchingExceptions([&]() { map.insert(Memslot{1, 0, 4096, 0, false, false}); }) !=
        nullptr);
  CHECK(kj::runCatchingExceptions([&]() { map.insert(Memslot{5, MiB, 4096, 0, false, false}); }) !=
        nullptr);
}

TEST_CASE("PinCounts: counts per page, kept as ranges of equal count", "[vm]") {
  PinCounts pins;
  pins.pin(0x10000, 0x4000);
  pins.pin(0x12000, 0x4000);
  CHECK(pins.pinnedPages() == 6);
  auto r = pins.ranges();
  REQUIRE(r.size() == 3);
  CHECK((r[0].start == 0x10000 && r[0].end == 0x12000 && r[0].count == 1));
  CHECK((r[1].start == 0x12000 && r[1].end == 0x14000 && r[1].count == 2));
  CHECK((r[2].start == 0x14000 && r[2].end == 0x16000 && r[2].count == 1));
  CHECK(!pins.unpin(0x15000, 0x2000));  // 0x16000 is not pinned: nothing changes
  CHECK(pins.pinnedPages() == 6);
  CHECK(pins.unpin(0x12000, 0x4000));
  REQUIRE(pins.ranges().size() == 1);  // merged back into one range
  CHECK(pins.ranges()[0].end == 0x14000);
  CHECK(pins.anyPinned(0x13000, 0x1000));
  CHECK(!pins.anyPinned(0x14000, 0x10000));
  CHECK(pins.pinnedBytes(0xf000, 0x2000) == 0x1000);
  CHECK(pins.unpin(0x10000, 0x4000));
  CHECK(pins.ranges().size() == 0);
  // A huge range is one entry.
  pins.pin(0, uint64_t(64) << 30);
  CHECK(pins.ranges().size() == 1);
  CHECK(pins.pinnedPages() == (uint64_t(64) << 30) / 4096);
}

TEST_CASE("PinCounts: random pins and unpins match a page-by-page reference", "[vm]") {
  std::mt19937_64 rng(GENERATE(1, 2, 3));
  PinCounts pins;
  std::map<uint64_t, uint64_t> ref;  // page -> count
  constexpr uint64_t PAGES = 64;
  for (int step = 0; step < 2000; step++) {
    uint64_t first = rng() % PAGES, count = 1 + rng() % (PAGES - first);
    uint64_t gpa = first * 4096, size = count * 4096;
    if (rng() % 2) {
      pins.pin(gpa, size);
      for (uint64_t p = first; p < first + count; p++) ref[p]++;
    } else {
      bool all = true;
      for (uint64_t p = first; p < first + count; p++) all = all && ref.count(p) && ref[p] > 0;
      REQUIRE(pins.unpin(gpa, size) == all);
      if (all) {
        for (uint64_t p = first; p < first + count; p++) {
          if (--ref[p] == 0) ref.erase(p);
        }
      }
    }
    // Same counts page by page, and the ranges are minimal.
    uint64_t pages = 0;
    auto ranges = pins.ranges();
    for (size_t i = 0; i < ranges.size(); i++) {
      if (i > 0) {
        REQUIRE(ranges[i - 1].end <= ranges[i].start);
        if (ranges[i - 1].end == ranges[i].start) REQUIRE(ranges[i - 1].count != ranges[i].count);
      }
      for (uint64_t a = ranges[i].start; a < ranges[i].end; a += 4096) {
        REQUIRE(ref.count(a / 4096));
        REQUIRE(ref[a / 4096] == ranges[i].count);
        pages++;
      }
    }
    REQUIRE(pages == ref.size());
    REQUIRE(pins.pinnedPages() == ref.size());
  }
}

}  // namespace
}  // namespace nb::vm
