// tests/components/page_table: shared fixture for the page-table engine tests.
//
// Owns: a PhysMem + FrameAllocator pair to build tables in, a FrameSource with a budget (to
// provoke ENOMEM), one-run map/unmap helpers, and Catch2 printing of Errno.
// Does not own: any expectation; tests type their golden values in themselves.

#pragma once

#include "components/page_table/arm_lpae/io-page-table.h"

#include <catch2/catch.hpp>
#include <string>

namespace Catch {
template <>
struct StringMaker<nb::pt::Errno> {
  static std::string convert(nb::pt::Errno e) { return nb::pt::errnoName(e).cStr(); }
};
}  // namespace Catch

namespace nb::pt {

constexpr uint64_t KiB = uint64_t(1) << 10;
constexpr uint64_t MiB = uint64_t(1) << 20;
constexpr uint64_t GiB = uint64_t(1) << 30;
constexpr uint64_t TiB = uint64_t(1) << 40;

constexpr uint64_t NOT_MAPPED = ~uint64_t(0);

struct PageTableFixture {
  // Tables live in [BASE, BASE + SIZE): below 4 GiB, so table addresses fit every OAS.
  static constexpr PhysAddr BASE = 0x4000'0000;
  static constexpr uint64_t SIZE = 256 * MiB;

  kj::Own<PhysMem> mem = PhysMem::createAnonymous(BASE, SIZE);
  FrameAllocator frames{BASE, SIZE};

  kj::Own<IoPageTable> make(const TableConfig& config) { return make(config, frames); }
  kj::Own<IoPageTable> make(const TableConfig& config, FrameSource& source) {
    auto created = IoPageTable::create(*mem, source, config);
    if (created.is<Errno>()) {
      FAIL("IoPageTable::create: " << errnoName(created.get<Errno>()).cStr());
    }
    return kj::mv(created.get<kj::Own<IoPageTable>>());
  }
};

class BudgetFrames final : public FrameSource {
  // Hands out at most `budget` bytes from an allocator, then reports out of memory.
public:
  BudgetFrames(FrameSource& inner, uint64_t budget) : inner(inner), budget(budget) {}
  kj::Maybe<PhysAddr> allocFrames(uint64_t bytes, uint64_t align) override {
    if (bytes > budget) return nullptr;
    budget -= bytes;
    return inner.allocFrames(bytes, align);
  }
  void freeFrames(PhysAddr pa, uint64_t bytes) override {
    budget += bytes;
    inner.freeFrames(pa, bytes);
  }
  FrameSource& inner;
  uint64_t budget;
};

inline MapResult mapOne(IoPageTable& t, uint64_t iova, PhysAddr pa, uint64_t size, Prot prot) {
  MapRun run{iova, pa, size, prot};
  return t.map(kj::arrayPtr(&run, 1));
}

inline UnmapResult unmapOne(IoPageTable& t, uint64_t iova, uint64_t size) {
  UnmapRange range{iova, size};
  return t.unmap(kj::arrayPtr(&range, 1));
}

inline uint64_t lookup(const IoPageTable& t, uint64_t iova) {
  KJ_IF_MAYBE(pa, t.iovaToPhys(iova)) return *pa;
  return NOT_MAPPED;
}

inline const char* formatName(Format f) { return f == Format::STAGE1 ? "S1" : "S2"; }

}  // namespace nb::pt
