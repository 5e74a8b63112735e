// nestbed shared utility: bit fields of little-endian 64-bit words, declared once as tables.
//
// Owns: the `Field` descriptor (hi:lo, spec order, as Linux GENMASK_ULL(hi, lo)) and word
// helpers. Does not own any layout: registers, descriptors, commands and events declare their
// fields next to the code that uses them, each with the spec section it comes from.

#pragma once

#include <kj/debug.h>
#include <cstdint>

namespace nb {

struct Field {
  // Bits hi..lo (inclusive) of a 64-bit word.
  uint8_t hi;
  uint8_t lo;

  constexpr uint64_t width() const { return hi - lo + 1u; }
  constexpr uint64_t maxValue() const {
    return width() >= 64 ? ~uint64_t(0) : (uint64_t(1) << width()) - 1;
  }
  constexpr uint64_t mask() const { return maxValue() << lo; }

  constexpr uint64_t get(uint64_t word) const { return (word >> lo) & maxValue(); }
  constexpr bool test(uint64_t word) const { return get(word) != 0; }

  // Returns `word` with this field replaced by `value`. A value that does not fit is a
  // caller's broken contract, never silently truncated.
  uint64_t set(uint64_t word, uint64_t value) const {
    KJ_REQUIRE(value <= maxValue(), "value does not fit its bit field", hi, lo, value);
    return (word & ~mask()) | (value << lo);
  }
  // Like set(), for values known at compile time to fit.
  constexpr uint64_t with(uint64_t word, uint64_t value) const {
    return (word & ~mask()) | ((value & maxValue()) << lo);
  }
  constexpr bool fits(uint64_t value) const { return value <= maxValue(); }
};

constexpr Field bits(unsigned hi, unsigned lo) { return Field{uint8_t(hi), uint8_t(lo)}; }
constexpr Field bit(unsigned n) { return Field{uint8_t(n), uint8_t(n)}; }

constexpr uint64_t genmask(unsigned hi, unsigned lo) { return bits(hi, lo).mask(); }

constexpr bool isPow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
constexpr unsigned log2Exact(uint64_t v) { return 63u - unsigned(__builtin_clzll(v)); }
constexpr uint64_t alignDown(uint64_t v, uint64_t a) { return v & ~(a - 1); }
constexpr uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr bool isAligned(uint64_t v, uint64_t a) { return (v & (a - 1)) == 0; }

}  // namespace nb
