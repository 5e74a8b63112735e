// nestbed shared utility: PCI function names as text, the way components name devices to each
// other ("ssss:bb:dd.f", or "bb:dd.f" when only one segment has that function).
//
// Owns: parsing and formatting those names. Does not own topology (hw/pci) or lookup policy.

#pragma once

#include <kj/string.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace nb {

struct BdfName {
  kj::Maybe<uint16_t> segment;  // absent in "bb:dd.f"
  uint16_t rid = 0;             // bus << 8 | device << 3 | function
};

inline kj::Maybe<BdfName> parseBdfName(kj::StringPtr text) {
  // Hex fields: [ssss:]bb:dd.f with device <= 0x1f and function <= 7.
  auto hex = [](kj::StringPtr s, size_t maxDigits, uint32_t max) -> kj::Maybe<uint32_t> {
    if (s.size() == 0 || s.size() > maxDigits) return nullptr;
    uint32_t v = 0;
    for (char c : s) {
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        return nullptr;
      v = v * 16 + d;
    }
    if (v > max) return nullptr;
    return v;
  };
  BdfName out;
  kj::StringPtr rest = text;
  size_t colons = 0;
  for (char c : text) colons += c == ':';
  if (colons == 2) {
    size_t i = KJ_ASSERT_NONNULL(text.findFirst(':'));
    KJ_IF_MAYBE(seg, hex(kj::heapString(text.slice(0, i)), 4, 0xffff)) {
      out.segment = uint16_t(*seg);
    } else {
      return nullptr;
    }
    rest = text.slice(i + 1);
  } else if (colons != 1) {
    return nullptr;
  }
  size_t colon = KJ_ASSERT_NONNULL(rest.findFirst(':'));
  KJ_IF_MAYBE(dot, rest.findFirst('.')) {
    if (*dot < colon) return nullptr;
    auto bus = hex(kj::heapString(rest.slice(0, colon)), 2, 0xff);
    auto dev = hex(kj::heapString(rest.slice(colon + 1, *dot)), 2, 0x1f);
    auto fn = hex(kj::heapString(rest.slice(*dot + 1)), 1, 7);
    if (bus == nullptr || dev == nullptr || fn == nullptr) return nullptr;
    out.rid =
        uint16_t(KJ_ASSERT_NONNULL(bus) << 8 | KJ_ASSERT_NONNULL(dev) << 3 | KJ_ASSERT_NONNULL(fn));
    return out;
  }
  return nullptr;
}

inline kj::String formatBdfName(uint16_t segment, uint16_t rid) {
  // "0000:03:00.1"
  char buf[16];
  snprintf(buf, sizeof(buf), "%04x:%02x:%02x.%x", segment, rid >> 8, (rid >> 3) & 31, rid & 7);
  return kj::heapString(buf);
}

}  // namespace nb
