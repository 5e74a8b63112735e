// `nestbed decode`: SMMUv3 structures as a person reads them — a command, an STE, a CD — from
// their words or from a `--dump-memory` image (the STE of a StreamID, its CD), and a table walk
// of an address through the tables an STE and CD name in that image.
//
// Owns: the field lists per structure (positions from util/smmuv3), the text, reading an image
// with its sidecar. Does not own: the layouts (util/smmuv3) or what the hardware does with them
// (hw/smmuv3; a walk here reads descriptors, it checks no permission and caches nothing).

#pragma once

#include <kj/array.h>
#include <kj/function.h>
#include <kj/vector.h>
#include <kj/one-of.h>
#include <kj/string.h>

#include <cstdint>

namespace nb::decode {

kj::String command(uint64_t dw0, uint64_t dw1);
kj::String ste(kj::ArrayPtr<const uint64_t> qwords);   // 4 or 8 qwords
kj::String cd(kj::ArrayPtr<const uint64_t> qwords);    // 4 or 8 qwords

// A `--dump-memory` image (`path`, its sidecar `path.json`).
class Image {
public:
  static kj::OneOf<Image, kj::String> open(kj::StringPtr path);

  // The qwords at `pa`, or why not (outside the image).
  kj::OneOf<kj::Array<uint64_t>, kj::String> read(uint64_t pa, size_t qwords) const;
  // The STE of `sid` in the stream table of SMMU `smmu` (the only one when empty).
  kj::OneOf<uint64_t, kj::String> steAddress(uint32_t sid, kj::StringPtr smmu) const;
  // The CD of `ssid` in the CD table an STE names.
  kj::OneOf<uint64_t, kj::String> cdAddress(kj::ArrayPtr<const uint64_t> ste, uint32_t ssid) const;
  // A translation table walk of `iova` for the STE (and CD, when the STE translates at stage
  // 1), level by level: each descriptor's address, value and meaning, then the output address.
  // Nested: the guest's CD (SSID `ssid`) and each of its tables through stage 2, then the IPA.
  kj::String walk(kj::ArrayPtr<const uint64_t> ste, kj::Maybe<kj::ArrayPtr<const uint64_t>> cd,
                  uint64_t iova, uint32_t ssid = 0) const;

  struct Regime;

private:
  kj::Maybe<uint64_t> walkStage(const Regime& r, uint64_t addr, kj::Vector<kj::String>& lines,
                                kj::StringPtr indent,
                                kj::Function<kj::Maybe<uint64_t>(uint64_t)>& table) const;

  kj::Array<kj::byte> bytes_;
  uint64_t base_ = 0;
  struct StreamTable {
    kj::String smmu;
    uint64_t pa;
    bool twoLevel;
    unsigned log2Size, split;
  };
  kj::Array<StreamTable> streamTables_;
};

}  // namespace nb::decode
