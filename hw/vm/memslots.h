// hw/vm: a VM's guest-physical memory map as data — memslots (GPA -> PA) and page pin counts.
//
// Owns: the slots of one VM sorted by GPA, lookups by id and by GPA, splitting a GPA range into
// per-slot runs, and the pin count of every guest page. Does not own: frames (the VM component
// allocates and reserves them), notices to subscribers, RPC (component.h), or the policy of
// which change is allowed (the component checks, then applies here).

#pragma once

#include <kj/common.h>
#include <kj/vector.h>
#include <cstdint>

namespace nb::vm {

constexpr uint64_t PAGE_SIZE = 4096;  // memslots and pins work in 4 KiB pages, as KVM's
constexpr uint32_t MAX_SLOT_ID = 32767;  // KVM_USER_MEM_SLOTS on arm64

struct Memslot {
  uint32_t id = 0;
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t pa = 0;
  bool readonly = false;
  bool allocated = false;  // backing from the frame allocator; false: reserved at a fixed pa

  uint64_t gpaEnd() const { return gpa + size; }  // exclusive
  bool containsGpa(uint64_t g) const { return g >= gpa && g - gpa < size; }
};

// [a, a + as) and [b, b + bs) share a byte. Ranges do not wrap (callers check).
constexpr bool overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs) {
  return a < b + bs && b < a + as;
}

struct GpaRun {
  // A piece of a GPA range that lies in one slot.
  uint64_t gpa;
  uint64_t pa;
  uint64_t size;
  const Memslot* slot;
};

class MemslotMap {
public:
  kj::ArrayPtr<const Memslot> slots() const { return slots_.asPtr(); }  // by ascending GPA
  uint64_t guestBytes() const;

  kj::Maybe<const Memslot&> find(uint32_t id) const;
  kj::Maybe<const Memslot&> lookup(uint64_t gpa) const;  // the slot containing `gpa`
  // The first slot (by GPA) sharing a byte with [gpa, gpa + size), other than slot `except`.
  kj::Maybe<const Memslot&> firstOverlap(uint64_t gpa, uint64_t size,
                                         kj::Maybe<uint32_t> except = nullptr) const;

  // [gpa, gpa + size) as runs, one per slot, by ascending GPA; null if some byte is in no slot
  // (or the range wraps). Slot pointers are valid until the map changes.
  kj::Maybe<kj::Vector<GpaRun>> runs(uint64_t gpa, uint64_t size) const;

  // Changes. The caller has checked them: a broken precondition (an id in use or missing, an
  // overlap) throws.
  void insert(const Memslot& slot);
  Memslot erase(uint32_t id);
  void move(uint32_t id, uint64_t gpa);
  void setReadonly(uint32_t id, bool readonly);

private:
  size_t indexOf(uint32_t id) const;
  void sort();

  kj::Vector<Memslot> slots_;  // sorted by gpa, never overlapping
};

class PinCounts {
  // How many times each guest page is pinned, kept as maximal ranges of equal count (a VM
  // pinned whole is one entry, however large). Addresses are GPAs, 4 KiB aligned: a pinned
  // slot cannot move, so its pins' GPAs stay valid.
public:
  void pin(uint64_t gpa, uint64_t size);
  // Drops one pin from every page of the range; false (and nothing changes) if a page of it is
  // not pinned.
  bool unpin(uint64_t gpa, uint64_t size);
  bool anyPinned(uint64_t gpa, uint64_t size) const;
  uint64_t pinnedBytes(uint64_t gpa, uint64_t size) const;  // of the range, each page once
  uint64_t pinnedPages() const;

  struct Range {
    uint64_t start, end;  // [start, end)
    uint64_t count;       // >= 1
  };
  kj::ArrayPtr<const Range> ranges() const { return ranges_.asPtr(); }

private:
  void add(uint64_t start, uint64_t end, int delta);

  kj::Vector<Range> ranges_;  // sorted, disjoint, adjacent ranges have different counts
};

}  // namespace nb::vm
