// util/smmuv3: the context descriptor layouts — the CD and the level-1 CD table descriptor.
//
// Owns: CD field positions and encodings (facts 2.5, Linux CTXDESC_CD_<qword>_<field> naming;
// AFFD, T1SZ, TG1, TTB1 and TBI1 from QEMU — the kernel never uses TTB1) and the CD table
// geometry Linux uses.
// Does not own: decoding CDs (hw/smmuv3/context-descriptor.h) or building them.

#pragma once

#include "util/bits.h"
#include <cstdint>

namespace nb::smmuv3 {

namespace cd {
constexpr unsigned CD_BYTES = 64;          // 8 qwords
constexpr unsigned CD_DWORDS = 8;

constexpr Field CD_0_T0SZ = bits(5, 0);    // 64 - IAS
constexpr Field CD_0_TG0 = bits(7, 6);
constexpr uint64_t TG0_4K = 0;
constexpr uint64_t TG0_64K = 1;
constexpr uint64_t TG0_16K = 2;
constexpr Field CD_0_IRGN0 = bits(9, 8);   // NC 0, WBWA 1, WT 2, WB 3
constexpr Field CD_0_ORGN0 = bits(11, 10);
constexpr Field CD_0_SH0 = bits(13, 12);   // NS 0, OS 2, IS 3
constexpr Field CD_0_EPD0 = bit(14);
constexpr Field CD_0_ENDI = bit(15);
constexpr Field CD_0_T1SZ = bits(21, 16);
constexpr Field CD_0_TG1 = bits(23, 22);
constexpr uint64_t TG1_16K = 1;
constexpr uint64_t TG1_4K = 2;
constexpr uint64_t TG1_64K = 3;
constexpr Field CD_0_EPD1 = bit(30);
constexpr Field CD_0_V = bit(31);
constexpr Field CD_0_IPS = bits(34, 32);   // registers.h ADDRESS_SIZE_BITS
constexpr Field CD_0_AFFD = bit(35);
constexpr Field CD_0_TBI0 = bit(38);
constexpr Field CD_0_TBI1 = bit(39);
constexpr Field CD_0_AA64 = bit(41);
constexpr Field CD_0_HD = bit(42);
constexpr Field CD_0_HA = bit(43);
constexpr Field CD_0_S = bit(44);
constexpr Field CD_0_R = bit(45);
constexpr Field CD_0_A = bit(46);
constexpr Field CD_0_ASET = bit(47);
constexpr Field CD_0_ASID = bits(63, 48);
constexpr Field CD_1_TTB0 = bits(51, 4);
constexpr Field CD_1_HAD0 = bit(1);        // QEMU
constexpr Field CD_2_TTB1 = bits(51, 4);
constexpr Field CD_3_MAIR = bits(63, 0);

// Two-level CD table (facts 2.5).
constexpr Field L1CD_V = bit(0);
constexpr Field L1CD_L2PTR = bits(51, 12);
constexpr unsigned L1CD_BYTES = 8;
constexpr unsigned CTXDESC_L2_ENTRIES = 1024;   // one 64 KB leaf
constexpr unsigned CTXDESC_LINEAR_CDMAX = 10;   // log2(64K / 64)
}  // namespace cd

}  // namespace nb::smmuv3
