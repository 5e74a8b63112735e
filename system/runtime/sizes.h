// Byte sizes as people write them in manifests: 268435456, "256MiB", "256M", "4K", "1GiB".
#pragma once

#include <kj/string.h>
#include <cstdint>

namespace nb {

// Parses a size with an optional binary unit (K/KiB, M/MiB, G/GiB, T/TiB, case-insensitive; a
// "B" after "KiB"-style units or a bare number). "256MB" is null: SI says 10^6, people often
// mean 2^20, so it is refused rather than guessed. Returns null too on anything else or overflow.
kj::Maybe<uint64_t> parseSize(kj::StringPtr text);
// Formats bytes compactly with a binary unit when exact ("256MiB"), else as a number.
kj::String formatSize(uint64_t bytes);

}  // namespace nb
