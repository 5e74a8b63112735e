// A scenario's SMMUv3 command, raw or built by name (interfaces/scenario.capnp RawCommand),
// encoded as its two little-endian qwords with util/smmuv3's layout (facts 1.3).
//
// Owns: the mapping from a named command's typed fields to its words, and refusing what does
// not fit (a field wider than its bits, an address not 4 KiB aligned). Does not own: the
// layout (util/smmuv3/commands.h) or what a command does (hw/smmuv3).

#pragma once

#include "interfaces/scenario.capnp.h"

#include <kj/one-of.h>
#include <kj/string.h>

namespace nb {

struct CommandWords {
  uint64_t dw0, dw1;
};

// The command's words, or what is wrong with it ("tlbiNhVa.addr: 0x10001 is not 4 KiB aligned").
kj::OneOf<CommandWords, kj::String> encodeCommand(rpc::RawCommand::Reader command);

// An STE's dw0 and dw1 built by field (facts 2.1), or what is wrong with them.
kj::OneOf<CommandWords, kj::String> encodeSte(rpc::SteFields::Reader fields);

// A whole 64-byte structure's eight qwords, little-endian.
struct StructureWords {
  uint64_t dw[8] = {};
};
// An STE by field, stage 2 included (dw2, dw3), or what is wrong with it.
kj::OneOf<StructureWords, kj::String> encodeSteWords(rpc::SteFields::Reader fields);
// A CD by field (facts 2.2), or what is wrong with it.
kj::OneOf<StructureWords, kj::String> encodeCdWords(rpc::CdFields::Reader fields);

}  // namespace nb
