// tests/components/page_table: randomized map/unmap/lookup against a std::map reference, for
// each partial-unmap policy and table lifetime, with fixed seeds.
//
// The reference knows nothing of tables: it holds leaves (base → size, pa, prot) and applies the
// documented rules: greedy largest aligned leaf from a typed-in size list, EEXIST on any overlap,
// stop at holes, and the policy on partial leaves. Every lookup is checked, and periodically
// every reference leaf is checked to sit at the level its size implies.

#include "tests/components/page_table/page-table-testing.h"

#include <map>
#include <random>
#include <vector>

namespace nb::pt {
namespace {

struct Leaf {
  uint64_t size;
  uint64_t pa;
};

class Reference {
public:
  Reference(std::vector<uint64_t> sizesLargestFirst, PartialUnmap policy)
      : sizes(sizesLargestFirst), policy(policy) {}

  struct MapOutcome {
    uint64_t mapped = 0;
    Errno error = Errno::OK;
  };
  MapOutcome map(uint64_t iova, uint64_t pa, uint64_t size) {
    MapOutcome out;
    uint64_t end = iova + size;
    while (iova < end) {
      uint64_t leaf = 0;
      for (uint64_t s : sizes) {
        if (iova % s == 0 && pa % s == 0 && end - iova >= s) {
          leaf = s;
          break;
        }
      }
      if (overlaps(iova, leaf)) {
        out.error = Errno::EXIST;
        return out;
      }
      leaves[iova] = Leaf{leaf, pa};
      out.mapped += leaf;
      iova += leaf;
      pa += leaf;
    }
    return out;
  }

  struct UnmapOutcome {
    uint64_t unmapped = 0;
    Errno error = Errno::OK;
  };
  UnmapOutcome unmap(uint64_t iova, uint64_t size) {
    UnmapOutcome out;
    uint64_t cur = iova, end = iova + size;
    while (cur < end) {
      auto it = containing(cur);
      if (it == leaves.end()) {
        out.error = Errno::NOENT;
        return out;
      }
      uint64_t base = it->first;
      Leaf leaf = it->second;
      bool whole = base == cur && base + leaf.size <= end;
      if (!whole) {
        if (policy == PartialUnmap::REFUSE) {
          out.error = Errno::INVAL;
          return out;
        }
        if (policy == PartialUnmap::SPLIT) {
          uint64_t smaller = nextSmaller(leaf.size);
          leaves.erase(it);
          for (uint64_t off = 0; off < leaf.size; off += smaller) {
            leaves[base + off] = Leaf{smaller, leaf.pa + off};
          }
          continue;
        }
      }
      leaves.erase(it);
      out.unmapped += leaf.size;
      cur = std::min(end, base + leaf.size);
    }
    return out;
  }

  uint64_t lookup(uint64_t iova) const {
    auto it = containing(iova);
    if (it == leaves.end()) return NOT_MAPPED;
    return it->second.pa + (iova - it->first);
  }

  std::map<uint64_t, Leaf> leaves;

private:
  std::map<uint64_t, Leaf>::const_iterator containing(uint64_t iova) const {
    auto it = leaves.upper_bound(iova);
    if (it == leaves.begin()) return leaves.end();
    --it;
    return iova < it->first + it->second.size ? it : leaves.end();
  }
  std::map<uint64_t, Leaf>::iterator containing(uint64_t iova) {
    auto it = leaves.upper_bound(iova);
    if (it == leaves.begin()) return leaves.end();
    --it;
    return iova < it->first + it->second.size ? it : leaves.end();
  }
  bool overlaps(uint64_t iova, uint64_t size) const {
    if (containing(iova) != leaves.end()) return true;
    auto it = leaves.lower_bound(iova);
    return it != leaves.end() && it->first < iova + size;
  }
  uint64_t nextSmaller(uint64_t size) const {
    for (uint64_t s : sizes) {
      if (s < size) return s;
    }
    return 0;
  }

  std::vector<uint64_t> sizes;
  PartialUnmap policy;
};

struct RandomCase {
  const char* name;
  Format format;
  Granule granule;
  uint32_t ias, oas;
  std::vector<uint64_t> sizes;  // leaf sizes, largest first (typed in, facts 4.3)
};

const char* policyName(PartialUnmap p) {
  switch (p) {
    case PartialUnmap::REFUSE: return "REFUSE";
    case PartialUnmap::SPLIT: return "SPLIT";
    case PartialUnmap::WHOLE_LEAF: return "WHOLE_LEAF";
  }
  return "?";
}

TEST_CASE("PageTable: random map/unmap/lookup matches a reference model",
          "[page_table][random]") {
  static const RandomCase cases[] = {
      {"S1 4K 48/48", Format::STAGE1, Granule::SIZE_4K, 48, 48, {GiB, 2 * MiB, 4 * KiB}},
      {"S2 4K 40/40 (concatenated)", Format::STAGE2, Granule::SIZE_4K, 40, 40,
       {GiB, 2 * MiB, 4 * KiB}},
      {"S2 16K 40/40 (16 tables)", Format::STAGE2, Granule::SIZE_16K, 40, 40,
       {32 * MiB, 16 * KiB}},
      {"S1 64K 52/52", Format::STAGE1, Granule::SIZE_64K, 52, 52,
       {4 * TiB, 512 * MiB, 64 * KiB}},
  };
  auto policy = GENERATE(PartialUnmap::REFUSE, PartialUnmap::SPLIT, PartialUnmap::WHOLE_LEAF);
  auto caseIndex = GENERATE(range(0, 4));
  auto lifetime = GENERATE(TableLifetime::LINUX, TableLifetime::EAGER);
  const RandomCase& rc = cases[caseIndex];
  DYNAMIC_SECTION(rc.name << " " << policyName(policy)
                          << (lifetime == TableLifetime::LINUX ? " linux" : " eager")) {
    PageTableFixture fx;
    uint64_t initial = fx.frames.usedBytes();
    TableConfig config;
    config.format = rc.format;
    config.granule = rc.granule;
    config.ias = rc.ias;
    config.oas = rc.oas;
    config.partialUnmap = policy;
    config.lifetime = lifetime;
    auto t = fx.make(config);
    Reference ref(rc.sizes, policy);

    const uint64_t page = rc.sizes.back();
    const uint64_t big = rc.sizes.front();
    const uint64_t mid = rc.sizes[rc.sizes.size() - 2];
    // A window of four largest leaves at the very top of the input space (the corner a
    // concatenated PGD must cover), so runs cross largest-leaf boundaries.
    const uint64_t window = 4 * big;
    const uint64_t windowBase = (uint64_t(1) << rc.ias) - window;
    std::mt19937_64 rng(0x5eed0000 + caseIndex * 16 + int(policy));

    auto pick = [&](uint64_t n) { return uint64_t(rng() % n); };
    auto randomAligned = [&](uint64_t align) {
      return windowBase + pick(window / align) * align;
    };
    auto randomSize = [&]() -> uint64_t {
      switch (pick(6)) {
        case 0: return big;
        case 1: return mid * (1 + pick(3));
        case 2: return mid + page * (1 + pick(8));
        default: return page * (1 + pick(32));
      }
    };
    auto randomAlign = [&]() -> uint64_t {
      switch (pick(4)) {
        case 0: return big;
        case 1: return mid;
        default: return page;
      }
    };

    uint64_t maps = 0, mapFailures = 0, unmaps = 0, shortUnmaps = 0, lookups = 0;
    for (int op = 0; op < 4000; op++) {
      uint32_t kind = uint32_t(pick(10));
      if (kind < 4) {
        uint64_t iova = randomAligned(randomAlign());
        uint64_t size = std::min(randomSize(), windowBase + window - iova);
        // pa: congruent to iova modulo the largest leaf most of the time, so blocks happen;
        // otherwise any page (then the run is all pages: keep it short). Below 2^oas.
        uint64_t pa = (iova - windowBase) + pick(16) * big;
        if (pick(4) == 0) {
          pa = pick(uint64_t(1) << 20) * page;
          size = std::min(size, mid + 32 * page);
        }
        Prot prot = pick(2) ? Prot::READ | Prot::WRITE : Prot::READ;
        auto expected = ref.map(iova, pa, size);
        auto r = mapOne(*t, iova, pa, size, prot);
        INFO("op " << op << " map iova 0x" << std::hex << iova << " pa 0x" << pa << " size 0x"
                   << size);
        REQUIRE(r.error == expected.error);
        REQUIRE(r.bytesMapped == expected.mapped);
        maps++;
        if (r.error != Errno::OK) mapFailures++;
      } else if (kind < 7) {
        uint64_t iova = randomAligned(randomAlign());
        uint64_t size = std::min(randomSize(), windowBase + window - iova);
        if (lifetime == TableLifetime::LINUX && !ref.leaves.empty()) {
          // Linux frees whatever a table-spanning unmap covers, holes and all, where the
          // reference (which knows no tables) stops at the first hole: under the linux
          // lifetime, ranges are hole-free runs of whole leaves, or part of one leaf (the
          // partial-unmap policies).
          auto it = ref.leaves.begin();
          std::advance(it, pick(std::min<uint64_t>(ref.leaves.size(), 4096)));
          iova = it->first;
          size = it->second.size;
          if (pick(4) == 0 && size > page) {
            uint64_t pages = size / page;
            uint64_t first = pick(pages);
            iova += first * page;
            size = page * (1 + pick(pages - first));
          } else {
            for (uint64_t n = pick(64); n > 0; n--) {
              auto next = std::next(it);
              if (next == ref.leaves.end() || next->first != it->first + it->second.size) break;
              size += next->second.size;
              it = next;
            }
          }
        }
        auto expected = ref.unmap(iova, size);
        auto u = unmapOne(*t, iova, size);
        INFO("op " << op << " unmap iova 0x" << std::hex << iova << " size 0x" << size);
        REQUIRE(u.error == expected.error);
        REQUIRE(u.bytesUnmapped == expected.unmapped);
        unmaps++;
        if (u.error != Errno::OK) shortUnmaps++;
        // Every leaf the reference removed is covered by some invalidation.
        uint64_t covered = 0;
        for (auto& inv : u.invalidations) covered += inv.size;
        REQUIRE(covered >= u.bytesUnmapped);
      } else {
        for (int i = 0; i < 8; i++) {
          uint64_t iova = windowBase + pick(window / 8) * 8;
          INFO("op " << op << " lookup 0x" << std::hex << iova);
          REQUIRE(lookup(*t, iova) == ref.lookup(iova));
          lookups++;
        }
      }
      if (op % 500 == 499) {
        // Every reference leaf sits at the level its size implies, with its pa. (One
        // assertion for the lot: there can be a million leaves.)
        uint64_t wrong = 0, firstWrong = 0;
        for (auto& [base, leaf] : ref.leaves) {
          auto steps = t->walk(base);
          bool ok = steps.size() > 0 && isLeaf(steps.back().descriptor, steps.back().level) &&
                    t->geometry().blockSize(steps.back().level) == leaf.size &&
                    decodeOutputAddress(steps.back().descriptor, rc.granule) == leaf.pa;
          if (!ok && wrong++ == 0) firstWrong = base;
        }
        INFO("op " << op << ": first leaf out of place at 0x" << std::hex << firstWrong);
        REQUIRE(wrong == 0);
      }
    }
    INFO("maps " << maps << " (failed " << mapFailures << "), unmaps " << unmaps << " (short "
                 << shortUnmaps << "), lookups " << lookups);
    CHECK(mapFailures > 0);
    if (lifetime == TableLifetime::EAGER || policy == PartialUnmap::REFUSE) {
      CHECK(shortUnmaps > 0);
    }
    CHECK(maps - mapFailures > 100);

    // Unmap every remaining leaf exactly: back to the PGD alone.
    uint64_t leftovers = 0;
    for (auto& [base, leaf] : ref.leaves) {
      if (unmapOne(*t, base, leaf.size).bytesUnmapped != leaf.size) leftovers++;
    }
    CHECK(leftovers == 0);
    // Eager frees every emptied table; linux keeps those no unmap spanned whole.
    if (lifetime == TableLifetime::EAGER) CHECK(t->tablePagesInUse() == 1);
    CHECK(t->stats().tablesAllocated - t->stats().tablesFreed == t->tablePagesInUse());
    t = nullptr;
    CHECK(fx.frames.usedBytes() == initial);
  }
}

}  // namespace
}  // namespace nb::pt
