// Byte sizes as people write them in manifests: 268435456, "256MiB", "256M", "4K", "1GiB".
#pragma once

#include <kj/string.h>
#include <cstdint>

namespace nb {

// Parses a size with an optional binary unit (K/KiB, M/MiB, G/GiB, T/TiB; case-insensitive
// "B" suffix optional). Returns null for anything else or on overflow.
kj::Maybe<uint64_t> parseSize(kj::StringPtr text);
// Formats bytes compactly with a binary unit when exact ("256MiB"), else as a number.
kj::String formatSize(uint64_t bytes);

}  // namespace nb
