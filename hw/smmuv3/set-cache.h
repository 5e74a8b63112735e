// hw/smmuv3: a bounded set-associative map with per-set LRU replacement, for the configuration
// cache (STEs, CDs).
//
// Owns: storage and replacement only. `capacity` entries as sets of `ways` ways, ways the
// largest of 8, 4, 2, 1 that divides the capacity; a key lives in set hash(key) mod sets. A new
// key takes its set's lowest free way, else evicts the way least recently inserted or found.
// Does not own: what is cached or when it is invalidated (tlb.h).
//
// Capacity 0 disables the cache: find() misses and insert() does nothing.

#pragma once

#include <kj/array.h>
#include <kj/debug.h>
#include <cstdint>

namespace nb::smmu {

template <typename Key, typename Value, typename Hash>
class SetCache {
public:
  explicit SetCache(uint32_t capacity) : capacity_(capacity) {
    if (capacity == 0) return;
    ways_ = 8;
    while (capacity % ways_ != 0) ways_ /= 2;
    sets_ = capacity / ways_;
    setsArePow2 = (sets_ & (sets_ - 1)) == 0;
    slots = kj::heapArray<Slot>(capacity);
  }
  KJ_DISALLOW_COPY(SetCache);

  uint32_t capacity() const { return capacity_; }
  uint32_t ways() const { return ways_; }
  uint32_t size() const { return count; }

  // The cached value (now the set's most recently used), or null.
  Value* find(const Key& key) {
    if (count == 0) return nullptr;
    const size_t first = firstOf(key);
    for (size_t i = first; i < first + ways_; i++) {
      if (slots[i].used && slots[i].key == key) {
        slots[i].lastUse = ++clock;
        return &slots[i].value;
      }
    }
    return nullptr;
  }

  // Inserts or replaces; returns the stored value (null when the cache is disabled). When
  // another entry had to be evicted to make room, `*evicted` is set and its key stored in
  // `*evictedKey` (both optional).
  Value* insert(const Key& key, const Value& value, Key* evictedKey = nullptr,
                bool* evicted = nullptr) {
    if (capacity_ == 0) return nullptr;
    const size_t first = firstOf(key);
    size_t free = SIZE_MAX, oldest = first;
    for (size_t i = first; i < first + ways_; i++) {
      if (!slots[i].used) {
        if (free == SIZE_MAX) free = i;
        continue;
      }
      if (slots[i].key == key) {
        slots[i].value = value;
        slots[i].lastUse = ++clock;
        return &slots[i].value;
      }
      if (!slots[oldest].used || slots[i].lastUse < slots[oldest].lastUse) oldest = i;
    }
    size_t i = free;
    if (i == SIZE_MAX) {
      i = oldest;
      if (evictedKey != nullptr) *evictedKey = slots[i].key;
      if (evicted != nullptr) *evicted = true;
    } else {
      count++;
    }
    slots[i].used = true;
    slots[i].key = key;
    slots[i].value = value;
    slots[i].lastUse = ++clock;
    return &slots[i].value;
  }

  bool erase(const Key& key) {
    if (count == 0) return false;
    const size_t first = firstOf(key);
    for (size_t i = first; i < first + ways_; i++) {
      if (slots[i].used && slots[i].key == key) {
        slots[i].used = false;
        count--;
        return true;
      }
    }
    return false;
  }

  // Erases every entry for which pred(key, value) holds; returns how many.
  template <typename Pred>
  size_t eraseIf(Pred&& pred) {
    if (count == 0) return 0;
    size_t n = 0;
    for (auto& s : slots) {
      if (s.used && pred(s.key, s.value)) {
        s.used = false;
        n++;
      }
    }
    count -= uint32_t(n);
    return n;
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
    uint64_t lastUse = 0;
  };

  size_t firstOf(const Key& key) const {
    const uint64_t h = Hash()(key);
    return size_t(setsArePow2 ? h & (sets_ - 1) : h % sets_) * ways_;
  }

  uint32_t capacity_;
  uint32_t ways_ = 0, sets_ = 0;
  bool setsArePow2 = true;
  uint32_t count = 0;
  uint64_t clock = 0;
  kj::Array<Slot> slots;
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
