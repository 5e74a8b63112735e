// hw/smmuv3: a bounded, open-addressing hash map for the model's caches.
//
// Owns: storage and replacement only — linear probing with backward-shift deletion (no
// tombstones) and pseudo-random replacement when full, as a set-associative hardware cache
// would pick a victim. Does not own: what is cached or when it is invalidated (tlb.h).
//
// Capacity 0 disables the cache: find() misses and insert() does nothing.

#pragma once

#include <kj/array.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <cstdint>

namespace nb::smmu {

template <typename Key, typename Value, typename Hash>
class FlatCache {
public:
  explicit FlatCache(uint32_t capacity) : capacity_(capacity) {
    if (capacity == 0) return;
    size_t n = 16;
    while (n < size_t(capacity) * 2) n <<= 1;  // load factor <= 1/2
    slots = kj::heapArray<Slot>(n);
    mask = n - 1;
  }
  KJ_DISALLOW_COPY(FlatCache);

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return count; }

  Value* find(const Key& key) {
    if (count == 0) return nullptr;
    for (size_t i = Hash()(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  // Inserts or replaces; returns the stored value (null when the cache is disabled). When
  // another entry had to be evicted to make room, `*evicted` is set and its key stored in
  // `*evictedKey` (both optional).
  Value* insert(const Key& key, const Value& value, Key* evictedKey = nullptr,
                bool* evicted = nullptr) {
    if (capacity_ == 0) return nullptr;
    if (Value* v = find(key)) {
      *v = value;
      return v;
    }
    if (count >= capacity_) {
      Key victim = evictOne();
      if (evictedKey != nullptr) *evictedKey = victim;
      if (evicted != nullptr) *evicted = true;
    }
    size_t i = Hash()(key) & mask;
    while (slots[i].used) i = (i + 1) & mask;
    slots[i].used = true;
    slots[i].key = key;
    slots[i].value = value;
    count++;
    return &slots[i].value;
  }

  bool erase(const Key& key) {
    if (count == 0) return false;
    for (size_t i = Hash()(key) & mask;; i = (i + 1) & mask) {
      if (!slots[i].used) return false;
      if (slots[i].key == key) {
        eraseSlot(i);
        return true;
      }
    }
  }

  // Erases every entry for which pred(key, value) holds; returns how many.
  template <typename Pred>
  size_t eraseIf(Pred&& pred) {
    if (count == 0) return 0;
    scratch.clear();
    for (auto& s : slots) {
      if (s.used && pred(s.key, s.value)) scratch.add(s.key);
    }
    for (auto& k : scratch) erase(k);
    return scratch.size();
  }

  size_t clear() {
    size_t n = count;
    for (auto& s : slots) s.used = false;
    count = 0;
    return n;
  }

private:
  struct Slot {
    bool used = false;
    Key key;
    Value value;
  };

  void eraseSlot(size_t i) {
    // Backward-shift deletion keeps every probe chain contiguous.
    size_t hole = i;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      if (!slots[j].used) break;
      size_t home = Hash()(slots[j].key) & mask;
      // Move j into the hole if its home is not cyclically in (hole, j].
      bool homeInRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!homeInRange) {
        slots[hole] = slots[j];
        hole = j;
      }
    }
    slots[hole].used = false;
    count--;
  }

  Key evictOne() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    for (size_t i = rng & mask;; i = (i + 1) & mask) {
      if (slots[i].used) {
        Key victim = slots[i].key;
        eraseSlot(i);
        return victim;
      }
    }
  }

  uint32_t capacity_;
  uint32_t count = 0;
  size_t mask = 0;
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  kj::Array<Slot> slots;
  kj::Vector<Key> scratch;
};

constexpr uint64_t mixHash(uint64_t x) {
  // A 64-bit finalizer (splitmix64).
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace nb::smmu
