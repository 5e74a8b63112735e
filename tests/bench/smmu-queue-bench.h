// tests/bench: the smmu_queue benchmark's two halves (one binary, //tests/bench:smmu_queue).
#pragma once

#include "system/composer/composer.h"
#include "system/registry.h"
#include <kj/async-io.h>

namespace nb::smmuq::bench {

// smmu-queue.c++: host command throughput through the component's capability.
void runHostBench(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr host,
                  kj::StringPtr only);

// smmu-queue-guest.c++: the three guest paths x placement x guest batch size.
void runGuestBench(kj::AsyncIoContext& io, const Registry& registry, kj::StringPtr host);

}  // namespace nb::smmuq::bench
