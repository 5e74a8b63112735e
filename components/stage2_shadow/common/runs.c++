// components/stage2_shadow/common: runs, records and leaf splits. See runs.h.

#include "components/stage2_shadow/common/runs.h"

#include <kj/debug.h>
#include <algorithm>

namespace nb::s2 {

kj::Maybe<Run> clip(const Run& run, Span span) {
  uint64_t from = kj::max(run.gpa, span.gpa);
  uint64_t to = kj::min(run.end(), span.end());
  if (from >= to) return nullptr;
  Run out = run;
  out.gpa = from;
  out.pa = run.pa + (from - run.gpa);
  out.size = to - from;
  return out;
}

// =============================================================================================
// RunRecord

uint64_t RunRecord::bytes() const {
  uint64_t total = 0;
  for (auto& r : runs_) total += r.size;
  return total;
}

size_t RunRecord::firstEndingAfter(uint64_t gpa) const {
  // Runs are sorted and disjoint, so their ends are sorted too.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), gpa,
                             [](uint64_t g, const Run& r) { return g < r.end(); });
  return size_t(it - runs_.begin());
}

void RunRecord::insert(const Run& run) {
  KJ_REQUIRE(run.size > 0 && run.end() > run.gpa, "empty or wrapping run", run.gpa, run.size);
  size_t at = firstEndingAfter(run.gpa);
  KJ_REQUIRE(at == runs_.size() || runs_[at].gpa >= run.end(), "run overlaps a recorded one",
             run.gpa, run.size, runs_[at].gpa, runs_[at].size);
  runs_.add(run);
  // Shift it into place (records are small: a run per memslot).
  for (size_t i = runs_.size() - 1; i > at; i--) std::swap(runs_[i], runs_[i - 1]);
}

kj::Vector<Run> RunRecord::overlapping(Span span, uint64_t& examined) const {
  kj::Vector<Run> out;
  for (size_t i = firstEndingAfter(span.gpa); i < runs_.size(); i++) {
    examined++;
    if (runs_[i].gpa >= span.end()) break;
    out.add(runs_[i]);
  }
  return out;
}

kj::Vector<Run> RunRecord::removeOverlapping(Span span) {
  kj::Vector<Run> out;
  kj::Vector<Run> kept(runs_.size());
  for (auto& r : runs_) {
    if (overlaps(r.gpa, r.size, span.gpa, span.size)) {
      out.add(r);
    } else {
      kept.add(r);
    }
  }
  runs_ = kj::mv(kept);
  return out;
}

kj::Vector<Run> RunRecord::removeSlot(uint32_t slot, uint64_t& examined) {
  kj::Vector<Run> out;
  kj::Vector<Run> kept(runs_.size());
  for (auto& r : runs_) {
    examined++;
    if (r.slot == slot) {
      out.add(r);
    } else {
      kept.add(r);
    }
  }
  runs_ = kj::mv(kept);
  return out;
}

bool RunRecord::remove(const Run& run) {
  for (auto i : kj::indices(runs_)) {
    if (runs_[i] == run) {
      for (size_t j = i; j + 1 < runs_.size(); j++) runs_[j] = runs_[j + 1];
      runs_.removeLast();
      return true;
    }
  }
  return false;
}

// =============================================================================================
// Leaf split

uint64_t LeafSplit::total() const {
  uint64_t n = 0;
  for (auto c : counts) n += c;
  return n;
}

void splitLeaves(uint64_t iova, uint64_t pa, uint64_t size, uint64_t pgsizeBitmap,
                 LeafSplit& into) {
  KJ_REQUIRE(pgsizeBitmap != 0, "a domain without leaf sizes");
  const uint64_t smallest = pgsizeBitmap & -pgsizeBitmap;
  KJ_REQUIRE(((iova | pa | size) & (smallest - 1)) == 0, "run not aligned to the granule", iova,
             pa, size, smallest);
  while (size > 0) {
    // iommu_pgsize: sizes no larger than what is left, and no larger than the alignment of
    // iova | pa (the lowest set bit; any size if both are zero).
    uint64_t fits = size >= (uint64_t(1) << 63)
                        ? ~uint64_t(0)
                        : (uint64_t(2) << (63 - __builtin_clzll(size))) - 1;
    uint64_t merged = iova | pa;
    uint64_t aligned = merged == 0 ? ~uint64_t(0) : ((merged & -merged) << 1) - 1;
    uint64_t candidates = pgsizeBitmap & fits & aligned;
    KJ_ASSERT(candidates != 0, "no leaf size fits", iova, pa, size);
    unsigned shift = 63 - unsigned(__builtin_clzll(candidates));
    uint64_t leaf = uint64_t(1) << shift;
    // Every leaf of this size up to the next alignment change is the same size: count them at
    // once (a 64 GiB run of 1 GiB blocks is one step, not 64).
    uint64_t n = size >> shift;
    if (merged != 0) {
      // Stop where a larger size would start to fit (only then does the choice change).
      uint64_t larger = pgsizeBitmap & ~((leaf << 1) - 1);
      if (larger != 0) {
        uint64_t next = larger & -larger;
        uint64_t toBoundary = (next - (iova & (next - 1))) >> shift;
        if ((iova & (next - 1)) == (pa & (next - 1))) n = kj::min(n, toBoundary);
      }
    }
    if (n == 0) n = 1;
    into.counts[shift] += n;
    iova += n << shift;
    pa += n << shift;
    size -= n << shift;
  }
}

}  // namespace nb::s2
