// components/smmu_queue/smmuv3: the smmu_queue component's registry entry — the RPC face
// (interfaces/smmu-queue.capnp SmmuQueue) over the host queue (host-queue.h) and the guest side
// (viommu.h) of one SMMU.
#pragma once

#include "system/runtime/contract.h"

namespace nb::smmuq {

ComponentType smmuQueueType();
// "smmu_queue/smmuv3". Role `smmu` (hw/smmuv3's Smmuv3). Settings: cmdq_log2size,
// evtq_log2size, batch_size, sync_policy = "linux" | "per_batch",
// stream_table = "two_level" | "linear", stream_table_split,
// sync_timeout_ms, unrouted_log, guest_path = "native" | "generic" | "sw_vcmdq"
// (components/smmu_queue/README.md).

}  // namespace nb::smmuq
