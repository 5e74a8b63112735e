// hw/smmuv3: the "hw/smmuv3" registry entry — one Smmuv3 model served over Cap'n Proto
// (interfaces/smmuv3.capnp): its MMIO register file, its device side (translate), its
// interrupts delivered to subscribers, its counters and the structures software programmed.
//
// Owns: the manifest settings of an SMMU instance (the `Features` fields in snake_case) and their
// validation, and the RPC face of the model. Does not own: any SMMU behaviour (smmuv3.h) or who
// programs it (smmu_queue, scenarios).
#pragma once

#include "system/runtime/contract.h"

namespace nb::smmu {

ComponentType smmuv3Type();
// "hw/smmuv3" (isHardware). Settings, all optional, defaults as in `Features`: stage1, stage2,
// ril, httu ("none" | "access" | "access_dirty"), ats, hyp, sid_bits, ssid_bits, oas, gran4k,
// gran16k, gran64k, asid16, vmid16, two_level_stream_table, cd2l, cmdq_log2_max,
// evtq_log2_max, attr_types_ovr, msi, sev, iotlb_entries, iotlb_ways, config_cache_entries.

}  // namespace nb::smmu
