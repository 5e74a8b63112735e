// tests/components/page_table: the io-pgtable-arm built-in selftest (facts 4.10,
// arm_lpae_run_tests) for every granule × every legal (ias <= oas) pair, stage 1 and stage 2.
//
// The page sizes are the selftest's own sets ({4K|2M|1G}, {16K|32M}, {64K|512M}); 52-bit
// addresses are added for 64K (Linux's selftest stops at 48). Step 5 maps the largest of those.

#include "tests/components/page_table/page-table-testing.h"

#include <vector>

namespace nb::pt {
namespace {

// IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE, as the selftest maps.
constexpr Prot RWXC = Prot::READ | Prot::WRITE | Prot::NOEXEC | Prot::CACHE;

struct Combo {
  Format format;
  Granule granule;
  uint32_t ias, oas;
};

std::vector<Combo> allCombos() {
  std::vector<Combo> combos;
  const uint32_t sizes[] = {32, 36, 40, 42, 44, 48, 52};
  for (Format format : {Format::STAGE1, Format::STAGE2}) {
    for (Granule granule : {Granule::SIZE_4K, Granule::SIZE_16K, Granule::SIZE_64K}) {
      for (uint32_t oas : sizes) {
        if (oas == 52 && granule != Granule::SIZE_64K) continue;
        // "ias > oas is not valid for stage 2"; the selftest applies it to both stages.
        for (uint32_t ias : sizes) {
          if (ias <= oas) combos.push_back({format, granule, ias, oas});
        }
      }
    }
  }
  return combos;
}

std::vector<uint64_t> selftestSizes(Granule granule) {
  switch (granule) {
    case Granule::SIZE_4K: return {4 * KiB, 2 * MiB, GiB};
    case Granule::SIZE_16K: return {16 * KiB, 32 * MiB};
    case Granule::SIZE_64K: return {64 * KiB, 512 * MiB};
  }
  return {};
}

TEST_CASE("PageTable: Linux selftest sequence for every granule and address size",
          "[page_table][selftest]") {
  auto combos = allCombos();
  // 4K: 21 pairs, 16K: 21, 64K: 28; twice (S1, S2).
  REQUIRE(combos.size() == 140);
  auto i = GENERATE_COPY(range(size_t(0), combos.size()));
  Combo c = combos[i];
  DYNAMIC_SECTION(formatName(c.format) << " granule " << uint32_t(c.granule) << " IAS " << c.ias
                                       << " OAS " << c.oas) {
    PageTableFixture fx;
    uint64_t usedBefore = fx.frames.usedBytes();
    {
      // 1. Allocate.
      TableConfig config;
      config.format = c.format;
      config.granule = c.granule;
      config.ias = c.ias;
      config.oas = c.oas;
      auto t = fx.make(config);
      auto sizes = selftestSizes(c.granule);

      // 2. Empty-table sanity.
      CHECK(lookup(*t, 42) == NOT_MAPPED);
      CHECK(lookup(*t, GiB + 42) == NOT_MAPPED);
      CHECK(lookup(*t, 2 * GiB + 42) == NOT_MAPPED);

      // 3. Distinct mappings of each page size.
      uint64_t iova = 0;
      for (uint64_t size : sizes) {
        INFO("step 3, size 0x" << std::hex << size);
        auto r = mapOne(*t, iova, iova, size, RWXC);
        CHECK(r.error == Errno::OK);
        CHECK(r.bytesMapped == size);
        auto again = mapOne(*t, iova, iova + size, size, Prot::READ | Prot::NOEXEC);
        CHECK(again.error == Errno::EXIST);
        CHECK(again.bytesMapped == 0);
        CHECK(lookup(*t, iova + 42) == iova + 42);
        iova += GiB;
      }

      // 4. Full unmap and remap.
      iova = 0;
      for (uint64_t size : sizes) {
        INFO("step 4, size 0x" << std::hex << size);
        auto u = unmapOne(*t, iova, size);
        CHECK(u.error == Errno::OK);
        CHECK(u.bytesUnmapped == size);
        CHECK(lookup(*t, iova + 42) == NOT_MAPPED);
        auto r = mapOne(*t, iova, iova, size, Prot::WRITE);
        CHECK(r.error == Errno::OK);
        CHECK(lookup(*t, iova + 42) == iova + 42);
        iova += GiB;
      }

      // 5. Top of IAS (the corner a concatenated PGD must cover).
      uint64_t size = sizes.back();
      iova = (uint64_t(1) << c.ias) - size;
      auto r = mapOne(*t, iova, iova, size, RWXC);
      CHECK(r.error == Errno::OK);
      CHECK(r.bytesMapped == size);
      CHECK(lookup(*t, iova + 42) == iova + 42);
      auto u = unmapOne(*t, iova, size);
      CHECK(u.bytesUnmapped == size);
      CHECK(lookup(*t, iova + 42) == NOT_MAPPED);
    }
    // 6. Free: nothing leaks.
    CHECK(fx.frames.usedBytes() == usedBefore);
  }
}

}  // namespace
}  // namespace nb::pt
