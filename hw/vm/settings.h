// hw/vm: the manifest form of a [[hw.vm]] entry and its validation.
//
// Owns: parsing `memslots` (and `ipa_bits`) with a positioned error for every problem.
// Does not own: claiming the frames (the component does, at start) or the map (memslots.h).
//
// Manifest form:
//   [[hw.vm]]
//   name = "vm0"
//   ipa_bits = 40                       # optional, 32..52 (default 40)
//   memslots = [
//     { slot = 0, gpa = 0, size = "64MiB", pa = "allocate" },
//     { slot = 1, gpa = 0x40000000, size = "2MiB", pa = 0x88000000, readonly = true },
//   ]
// `gpa` and `size` are integers or byte sizes ("1GiB"); `pa` is a physical address inside
// [memory] or "allocate" (frames from hw/mem's allocator, contiguous, zeroed).

#pragma once

#include "system/runtime/contract.h"

#include <cstdint>

namespace nb::vm {

constexpr unsigned MIN_IPA_BITS = 32;
constexpr unsigned MAX_IPA_BITS = 52;  // FEAT_LPA; arm64 KVM accepts 32..the host's PARange
constexpr unsigned DEFAULT_IPA_BITS = 40;  // KVM's default IPA size on arm64

struct SlotSpec {
  uint32_t id;
  uint64_t gpa;
  uint64_t size;
  kj::Maybe<uint64_t> pa;  // null: "allocate"
  bool readonly;
};

// Validates a `memslots` array and returns its slots in manifest order; reports every problem
// (each at the offending node, with a key suffix like ".2.gpa") and returns null if there was
// any. `errors.memory()`, when known, bounds fixed `pa` backings.
kj::Maybe<kj::Array<SlotSpec>> parseMemslots(const toml::node& memslots, SettingErrors& errors);

void checkIpaBits(const toml::node& value, SettingErrors& errors);

}  // namespace nb::vm
