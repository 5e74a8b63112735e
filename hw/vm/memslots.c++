// hw/vm: the memslot map and pin counts. See memslots.h.

#include "hw/vm/memslots.h"

#include <kj/debug.h>
#include <algorithm>

namespace nb::vm {

// ======================================================================================
// MemslotMap

uint64_t MemslotMap::guestBytes() const {
  uint64_t total = 0;
  for (auto& s : slots_) total += s.size;
  return total;
}

kj::Maybe<const Memslot&> MemslotMap::find(uint32_t id) const {
  for (auto& s : slots_) {
    if (s.id == id) return s;
  }
  return nullptr;
}

kj::Maybe<const Memslot&> MemslotMap::lookup(uint64_t gpa) const {
  // The last slot starting at or below `gpa` is the only one that can contain it.
  auto it = std::upper_bound(slots_.begin(), slots_.end(), gpa,
                             [](uint64_t g, const Memslot& s) { return g < s.gpa; });
  if (it == slots_.begin()) return nullptr;
  --it;
  if (it->containsGpa(gpa)) return *it;
  return nullptr;
}

kj::Maybe<const Memslot&> MemslotMap::firstOverlap(uint64_t gpa, uint64_t size,
                                                   kj::Maybe<uint32_t> except) const {
  for (auto& s : slots_) {
    KJ_IF_MAYBE (e, except) {
      if (s.id == *e) continue;
    }
    if (overlaps(s.gpa, s.size, gpa, size)) return s;
  }
  return nullptr;
}

kj::Maybe<kj::Vector<GpaRun>> MemslotMap::runs(uint64_t gpa, uint64_t size) const {
  if (size == 0 || gpa + size < gpa) return nullptr;
  kj::Vector<GpaRun> out;
  uint64_t at = gpa, end = gpa + size;
  while (at < end) {
    KJ_IF_MAYBE (s, lookup(at)) {
      uint64_t stop = kj::min(end, s->gpaEnd());
      out.add(GpaRun{at, s->pa + (at - s->gpa), stop - at, s});
      at = stop;
    } else {
      return nullptr;
    }
  }
  return kj::mv(out);
}

size_t MemslotMap::indexOf(uint32_t id) const {
  for (auto i : kj::indices(slots_)) {
    if (slots_[i].id == id) return i;
  }
  KJ_FAIL_REQUIRE("no memslot with this id", id);
}

void MemslotMap::sort() {
  std::sort(slots_.begin(), slots_.end(),
            [](const Memslot& a, const Memslot& b) { return a.gpa < b.gpa; });
}

void MemslotMap::insert(const Memslot& slot) {
  KJ_REQUIRE(find(slot.id) == nullptr, "memslot id in use", slot.id);
  KJ_REQUIRE(slot.size > 0 && slot.gpa + slot.size > slot.gpa, "empty or wrapping memslot",
             slot.gpa, slot.size);
  KJ_REQUIRE(firstOverlap(slot.gpa, slot.size) == nullptr, "memslot overlaps another", slot.id);
  slots_.add(slot);
  sort();
}

Memslot MemslotMap::erase(uint32_t id) {
  size_t i = indexOf(id);
  Memslot gone = slots_[i];
  for (size_t j = i; j + 1 < slots_.size(); j++) slots_[j] = slots_[j + 1];
  slots_.removeLast();
  return gone;
}

void MemslotMap::move(uint32_t id, uint64_t gpa) {
  auto& s = slots_[indexOf(id)];
  KJ_REQUIRE(gpa + s.size > gpa, "moved memslot wraps", id, gpa);
  KJ_REQUIRE(firstOverlap(gpa, s.size, id) == nullptr, "moved memslot overlaps another", id);
  s.gpa = gpa;
  sort();
}

void MemslotMap::setReadonly(uint32_t id, bool readonly) {
  slots_[indexOf(id)].readonly = readonly;
}

// ======================================================================================
// PinCounts

void PinCounts::add(uint64_t start, uint64_t end, int delta) {
  // Rebuilds the list: ranges before and after [start, end) are kept, ranges crossing its
  // edges are split, counts inside change by `delta`, and (pins) gaps inside get count 1.
  kj::Vector<Range> out(ranges_.size() + 2);
  uint64_t at = start;  // the first byte of [start, end) not yet emitted
  auto fill = [&](uint64_t to) {
    if (delta > 0 && at < to) out.add(Range{at, to, uint64_t(delta)});
    at = kj::max(at, to);
  };
  for (auto& r : ranges_) {
    if (r.end <= start || r.start >= end) {
      if (r.start >= end) fill(end);
      out.add(r);
      continue;
    }
    if (r.start < start) out.add(Range{r.start, start, r.count});
    fill(r.start);
    uint64_t lo = kj::max(r.start, start), hi = kj::min(r.end, end);
    uint64_t count = uint64_t(int64_t(r.count) + delta);
    if (count > 0) out.add(Range{lo, hi, count});
    at = hi;
    if (r.end > end) out.add(Range{end, r.end, r.count});
  }
  fill(end);

  // Merge neighbours with equal counts so the list stays minimal.
  ranges_.clear();
  for (auto& r : out) {
    if (!ranges_.empty() && ranges_.back().end == r.start && ranges_.back().count == r.count) {
      ranges_.back().end = r.end;
    } else {
      ranges_.add(r);
    }
  }
}

void PinCounts::pin(uint64_t gpa, uint64_t size) {
  KJ_REQUIRE(size > 0 && gpa + size > gpa, "empty or wrapping pin", gpa, size);
  add(gpa, gpa + size, +1);
}

bool PinCounts::unpin(uint64_t gpa, uint64_t size) {
  if (size == 0 || gpa + size < gpa || pinnedBytes(gpa, size) != size) return false;
  add(gpa, gpa + size, -1);
  return true;
}

bool PinCounts::anyPinned(uint64_t gpa, uint64_t size) const {
  return pinnedBytes(gpa, size) != 0;
}

uint64_t PinCounts::pinnedBytes(uint64_t gpa, uint64_t size) const {
  uint64_t total = 0;
  for (auto& r : ranges_) {
    if (overlaps(r.start, r.end - r.start, gpa, size)) {
      total += kj::min(r.end, gpa + size) - kj::max(r.start, gpa);
    }
  }
  return total;
}

uint64_t PinCounts::pinnedPages() const {
  uint64_t bytes = 0;
  for (auto& r : ranges_) bytes += r.end - r.start;
  return bytes / PAGE_SIZE;
}

}  // namespace nb::vm
