// util/smmuv3: the stream table layouts — the STE and the level-1 stream table descriptor.
//
// Owns: STE field positions and encodings (facts 2.1, Linux STRTAB_STE_<qword>_<field> naming;
// S2AFFD/S2HD/S2HA per discrepancy D1) and the two-level stream table geometry Linux uses.
// Does not own: decoding STEs (hw/smmuv3/stream-table.h) or building them (domain_allocator).

#pragma once

#include "util/bits.h"
#include <cstdint>

namespace nb::smmuv3 {

namespace ste {
constexpr unsigned STE_BYTES = 64;         // 8 qwords
constexpr unsigned STE_DWORDS = 8;

constexpr Field STE_0_V = bit(0);
constexpr Field STE_0_CONFIG = bits(3, 1);
// Config bit 0 = stage 1 enabled, bit 1 = stage 2 enabled, bit 2 = 0 means abort.
constexpr uint64_t CONFIG_ABORT = 0;
constexpr uint64_t CONFIG_BYPASS = 4;
constexpr uint64_t CONFIG_S1_TRANS = 5;
constexpr uint64_t CONFIG_S2_TRANS = 6;
constexpr uint64_t CONFIG_NESTED = 7;
constexpr Field STE_0_S1FMT = bits(5, 4);
constexpr uint64_t S1FMT_LINEAR = 0;
constexpr uint64_t S1FMT_4K_L2 = 1;
constexpr uint64_t S1FMT_64K_L2 = 2;
constexpr Field STE_0_S1CTXPTR = bits(51, 6);
constexpr Field STE_0_S1CDMAX = bits(63, 59);

constexpr Field STE_1_S1DSS = bits(1, 0);
constexpr uint64_t S1DSS_TERMINATE = 0;
constexpr uint64_t S1DSS_BYPASS = 1;
constexpr uint64_t S1DSS_SSID0 = 2;
constexpr Field STE_1_S1CIR = bits(3, 2);  // NC 0, WBRA 1, WT 2, WB 3
constexpr Field STE_1_S1COR = bits(5, 4);
constexpr Field STE_1_S1CSH = bits(7, 6);  // NSH 0, OSH 2, ISH 3
constexpr uint64_t S1C_CACHE_NC = 0;
constexpr uint64_t S1C_CACHE_WBRA = 1;
constexpr uint64_t S1C_CACHE_WT = 2;
constexpr uint64_t S1C_CACHE_WB = 3;
constexpr uint64_t S1C_SH_NSH = 0;
constexpr uint64_t S1C_SH_OSH = 2;
constexpr uint64_t S1C_SH_ISH = 3;
constexpr Field STE_1_MEV = bit(19);
constexpr Field STE_1_S2FWB = bit(25);
constexpr Field STE_1_S1STALLD = bit(27);
constexpr Field STE_1_EATS = bits(29, 28);
constexpr uint64_t EATS_ABT = 0;
constexpr uint64_t EATS_TRANS = 1;
constexpr uint64_t EATS_S1CHK = 2;
constexpr Field STE_1_STRW = bits(31, 30);
constexpr uint64_t STRW_NSEL1 = 0;
constexpr uint64_t STRW_EL2 = 2;
constexpr Field STE_1_SHCFG = bits(45, 44);
constexpr uint64_t SHCFG_INCOMING = 1;

constexpr Field STE_2_S2VMID = bits(15, 0);
constexpr Field STE_2_VTCR = bits(50, 32);  // the sub-fields below
constexpr Field STE_2_S2T0SZ = bits(37, 32);
constexpr Field STE_2_S2SL0 = bits(39, 38);
constexpr Field STE_2_S2IR0 = bits(41, 40);
constexpr Field STE_2_S2OR0 = bits(43, 42);
constexpr Field STE_2_S2SH0 = bits(45, 44);
constexpr Field STE_2_S2TG = bits(47, 46);
constexpr uint64_t S2TG_4K = 0;
constexpr uint64_t S2TG_64K = 1;
constexpr uint64_t S2TG_16K = 2;
constexpr Field STE_2_S2PS = bits(50, 48);
constexpr Field STE_2_S2AA64 = bit(51);
constexpr Field STE_2_S2ENDI = bit(52);
constexpr Field STE_2_S2AFFD = bit(53);
constexpr Field STE_2_S2PTW = bit(54);
constexpr Field STE_2_S2HD = bit(55);
constexpr Field STE_2_S2HA = bit(56);
constexpr Field STE_2_S2S = bit(57);
constexpr Field STE_2_S2R = bit(58);

constexpr Field STE_3_S2TTB = bits(51, 4);

// Two-level stream table (facts 2.1).
constexpr Field L1STD_SPAN = bits(4, 0);   // 2^(SPAN-1) STEs in the level-2 table; 0 = invalid
constexpr Field L1STD_L2PTR = bits(51, 6);
constexpr unsigned L1STD_BYTES = 8;
constexpr unsigned STRTAB_SPLIT = 8;       // Linux: 256 STEs per level-2 table
constexpr unsigned STRTAB_L1_ENTRIES_MAX = 1u << 17;
}  // namespace ste

}  // namespace nb::smmuv3
