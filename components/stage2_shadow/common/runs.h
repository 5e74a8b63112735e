// components/stage2_shadow/common: GPA → PA runs as plain data — the run type both
// implementations map from, a sorted record of runs with range queries, clipping runs to GPA
// spans, and the leaf split a domain applies to a run (how many page-table leaves of each size
// a run occupies).
//
// Owns: arithmetic only (no RPC, no memory access). Does not own: where runs come from (the
// implementations) or mapping them (shadow.h).

#pragma once

#include <kj/array.h>
#include <kj/common.h>
#include <kj/vector.h>
#include <cstdint>

namespace nb::s2 {

struct Span {
  // A GPA range [gpa, gpa + size).
  uint64_t gpa = 0;
  uint64_t size = 0;

  uint64_t end() const { return gpa + size; }
};

struct Run {
  // GPA g in [gpa, gpa + size) is backed by PA pa + (g - gpa): a memslot, or part of one.
  uint64_t gpa = 0;
  uint64_t pa = 0;
  uint64_t size = 0;
  bool readonly = false;
  uint32_t slot = 0;

  uint64_t end() const { return gpa + size; }
  Span span() const { return Span{gpa, size}; }
  bool operator==(const Run& other) const {
    return gpa == other.gpa && pa == other.pa && size == other.size &&
           readonly == other.readonly && slot == other.slot;
  }
};

inline bool overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs) {
  return a < b + bs && b < a + as;
}

kj::Maybe<Run> clip(const Run& run, Span span);
// The part of `run` inside `span`, its PA moved along with its GPA; null if they share no byte.

class RunRecord {
  // Runs sorted by GPA, never overlapping: what a shadow has mapped, or pinned_pfn's record of
  // the frames it pinned. Lookups are binary searches; `examined` counts the entries a query
  // looked at (the "walk" cost a shadow reports).
public:
  kj::ArrayPtr<const Run> runs() const { return runs_.asPtr(); }
  uint64_t bytes() const;
  size_t size() const { return runs_.size(); }

  void insert(const Run& run);
  // KJ_REQUIRE: the run overlaps none already recorded.

  kj::Vector<Run> overlapping(Span span, uint64_t& examined) const;
  // Every run sharing a byte with `span`, whole, by GPA.

  kj::Vector<Run> removeOverlapping(Span span);
  // Removes and returns every run sharing a byte with `span`, whole.

  kj::Vector<Run> removeSlot(uint32_t slot, uint64_t& examined);
  // Removes and returns every run of memslot `slot`, by GPA.

  bool remove(const Run& run);
  // Removes exactly this run; false if it is not recorded.

  void clear() { runs_.clear(); }

private:
  size_t firstEndingAfter(uint64_t gpa) const;  // index of the first run with end() > gpa

  kj::Vector<Run> runs_;
};

struct LeafSplit {
  // Leaves of each size a run occupies: counts[i] leaves of size 1 << i.
  uint64_t counts[64] = {};
  uint64_t total() const;
};

void splitLeaves(uint64_t iova, uint64_t pa, uint64_t size, uint64_t pgsizeBitmap,
                 LeafSplit& into);
// Adds the leaves of [iova, iova + size) → pa: at each step the largest size in `pgsizeBitmap`
// that fits what is left and to which both iova and pa are aligned (Linux iommu_pgsize; the
// page_table engine splits runs the same way). `size`, `iova` and `pa` are multiples of the
// smallest size in the bitmap.

}  // namespace nb::s2
