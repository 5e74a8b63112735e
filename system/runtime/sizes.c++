// Byte-size parsing and formatting. See sizes.h.

#include "system/runtime/sizes.h"

#include <cctype>

namespace nb {

kj::Maybe<uint64_t> parseSize(kj::StringPtr text) {
  const char* p = text.cStr();
  if (!isdigit(*p)) return nullptr;
  uint64_t value = 0;
  bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
  if (hex) p += 2;
  const char* digits = p;
  for (; hex ? isxdigit(*p) : isdigit(*p); p++) {
    uint64_t d = isdigit(*p) ? uint64_t(*p - '0') : uint64_t(tolower(*p) - 'a' + 10);
    uint64_t next = value * (hex ? 16 : 10) + d;
    if (next / (hex ? 16 : 10) != value) return nullptr;
    value = next;
  }
  if (p == digits) return nullptr;
  unsigned shift = 0;
  switch (tolower(*p)) {
    case 'k': shift = 10; p++; break;
    case 'm': shift = 20; p++; break;
    case 'g': shift = 30; p++; break;
    case 't': shift = 40; p++; break;
    default: break;
  }
  // A binary unit: "256MiB" or "256M" (2^20 each). "256MB" would be 10^6-based by SI and is
  // often meant as 2^20: ambiguous, so refused. A bare "B" after the number is bytes.
  if (shift != 0) {
    if (*p == 'i') {
      p++;
      if (tolower(*p) == 'b') p++;
    }
  } else if (tolower(*p) == 'b') {
    p++;
  }
  if (*p != '\0') return nullptr;
  if (shift != 0 && (value << shift) >> shift != value) return nullptr;
  return value << shift;
}

kj::String formatSize(uint64_t bytes) {
  static constexpr struct { unsigned shift; const char* unit; } UNITS[] = {
      {40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  for (auto& u : UNITS) {
    uint64_t unit = uint64_t(1) << u.shift;
    if (bytes >= unit && bytes % unit == 0) return kj::str(bytes >> u.shift, u.unit);
  }
  return kj::str(bytes);
}

}  // namespace nb
