// util/smmuv3: the SMMUv3 register layouts — offsets and fields, declared once.
//
// Owns: every register offset and field software and the model agree on (facts 1.7, 1.8; IHI
// 0070 where marked — the specification itself is a gap of the facts, section 9, so those come
// from knowledge of the architecture and are to be checked against it), the queue pointer and
// queue base formats (facts 1.1) and the queue entry sizes.
// Does not own: any behaviour. The register file is hw/smmuv3/registers.h; the driver side is
// components/smmu_queue. Both include this file so that a wrong position cannot differ between
// them — tests decode with literal positions from the facts instead.

#pragma once

#include "util/bits.h"
#include <cstdint>

namespace nb::smmuv3 {

using nb::bit;
using nb::bits;
using nb::Field;

constexpr uint32_t PAGE1 = 0x10000;   // page 1 base (64 KB pages), facts 1.8
constexpr uint32_t MMIO_SIZE = 0x20000;

namespace IDR0 {
constexpr uint32_t OFFSET = 0x00;
constexpr Field S2P = bit(0);
constexpr Field S1P = bit(1);
constexpr Field TTF = bits(3, 2);          // 2 = AArch64 only, 3 = both
constexpr uint64_t TTF_AARCH64 = 2;
constexpr Field COHACC = bit(4);
constexpr Field HTTU = bits(7, 6);         // 1 = access flag, 2 = access + dirty
constexpr uint64_t HTTU_ACCESS = 1;
constexpr uint64_t HTTU_ACCESS_DIRTY = 2;
constexpr Field HYP = bit(9);
constexpr Field ATS = bit(10);
constexpr Field ASID16 = bit(12);
constexpr Field MSI = bit(13);
constexpr Field SEV = bit(14);
constexpr Field PRI = bit(16);
constexpr Field VMID16 = bit(18);
constexpr Field CD2L = bit(19);
constexpr Field TTENDIAN = bits(22, 21);   // 0 mixed, 2 little-endian, 3 big-endian
constexpr uint64_t TTENDIAN_LE = 2;
constexpr Field STALL_MODEL = bits(25, 24);  // 0 stall, 1 no stall (IHI 0070 SMMU_IDR0), 2 force
constexpr uint64_t STALL_MODEL_NONE = 1;
constexpr Field TERM_MODEL = bit(26);      // 1 = terminated transactions abort; 0 = CD.A decides
constexpr Field ST_LVL = bits(28, 27);     // 1 = two-level stream table
constexpr uint64_t ST_LVL_2LVL = 1;
}  // namespace IDR0

namespace IDR1 {
constexpr uint32_t OFFSET = 0x04;
constexpr Field SIDSIZE = bits(5, 0);
constexpr Field SSIDSIZE = bits(10, 6);
constexpr Field PRIQS = bits(15, 11);
constexpr Field EVTQS = bits(20, 16);
constexpr Field CMDQS = bits(25, 21);
constexpr Field ATTR_TYPES_OVR = bit(27);
constexpr Field REL = bit(28);
constexpr Field QUEUES_PRESET = bit(29);
constexpr Field TABLES_PRESET = bit(30);
}  // namespace IDR1

namespace IDR2 { constexpr uint32_t OFFSET = 0x08; }
namespace IDR3 {
constexpr uint32_t OFFSET = 0x0c;
constexpr Field FWB = bit(8);
constexpr Field RIL = bit(10);
constexpr Field BBML = bits(12, 11);
}  // namespace IDR3
namespace IDR4 { constexpr uint32_t OFFSET = 0x10; }
namespace IDR5 {
constexpr uint32_t OFFSET = 0x14;
constexpr Field OAS = bits(2, 0);          // 0:32 1:36 2:40 3:42 4:44 5:48 6:52 bits
constexpr Field GRAN4K = bit(4);
constexpr Field GRAN16K = bit(5);
constexpr Field GRAN64K = bit(6);
constexpr Field VAX = bits(11, 10);        // 1 = 52-bit VA
constexpr Field STALL_MAX = bits(31, 16);
}  // namespace IDR5
constexpr uint8_t ADDRESS_SIZE_BITS[] = {32, 36, 40, 42, 44, 48, 52};
// The OAS/IPS/PS encoding: index = encoding (facts 1.8 IDR5.OAS, 2.1 S2PS, 2.5 IPS).

namespace IIDR { constexpr uint32_t OFFSET = 0x18; }
namespace AIDR {
constexpr uint32_t OFFSET = 0x1c;
constexpr Field ARCH_MINOR_REV = bits(3, 0);   // IHI 0070 SMMU_AIDR
constexpr Field ARCH_MAJOR_REV = bits(7, 4);   // 0 = SMMUv3
}  // namespace AIDR

namespace CR0 {
// Each write to CR0 is waited on until CR0ACK matches (facts 1.8).
constexpr uint32_t OFFSET = 0x20;
constexpr Field SMMUEN = bit(0);
constexpr Field PRIQEN = bit(1);
constexpr Field EVTQEN = bit(2);
constexpr Field CMDQEN = bit(3);
constexpr Field ATSCHK = bit(4);
}  // namespace CR0
namespace CR0ACK { constexpr uint32_t OFFSET = 0x24; }  // same fields as CR0
namespace CR1 {
constexpr uint32_t OFFSET = 0x28;
constexpr Field QUEUE_IC = bits(1, 0);
constexpr Field QUEUE_OC = bits(3, 2);
constexpr Field QUEUE_SH = bits(5, 4);
constexpr Field TABLE_IC = bits(7, 6);
constexpr Field TABLE_OC = bits(9, 8);
constexpr Field TABLE_SH = bits(11, 10);
// Cacheability and shareability encodings (IHI 0070 SMMU_CR1; the kernel uses ISH + WB,
// facts 1.8).
constexpr uint64_t CACHE_NC = 0;
constexpr uint64_t CACHE_WB = 1;
constexpr uint64_t CACHE_WT = 2;
constexpr uint64_t SH_NSH = 0;
constexpr uint64_t SH_OSH = 2;
constexpr uint64_t SH_ISH = 3;
}  // namespace CR1
namespace CR2 {
constexpr uint32_t OFFSET = 0x2c;
constexpr Field E2H = bit(0);
constexpr Field RECINVSID = bit(1);
constexpr Field PTM = bit(2);
}  // namespace CR2

namespace GBPA {
// UPDATE is a handshake: write the new value with UPDATE = 1, wait for it to clear (facts 1.8).
constexpr uint32_t OFFSET = 0x44;
// Attribute fields below ABORT are from IHI 0070 SMMU_GBPA.
constexpr Field MEMATTR = bits(3, 0);
constexpr Field MTCFG = bit(4);
constexpr Field ALLOCCFG = bits(11, 8);
constexpr Field SHCFG = bits(13, 12);      // reset 0b01 = use incoming
constexpr Field PRIVCFG = bits(17, 16);
constexpr Field INSTCFG = bits(19, 18);
constexpr Field ABORT = bit(20);
constexpr Field UPDATE = bit(31);
}  // namespace GBPA

namespace IRQ_CTRL {
constexpr uint32_t OFFSET = 0x50;
constexpr Field GERROR_IRQEN = bit(0);
constexpr Field PRIQ_IRQEN = bit(1);
constexpr Field EVTQ_IRQEN = bit(2);
}  // namespace IRQ_CTRL
namespace IRQ_CTRL_ACK { constexpr uint32_t OFFSET = 0x54; }

namespace GERROR {
// Facts 1.7: active = GERROR ^ GERRORN; the SMMU flips GERROR, software flips GERRORN (writing
// GERROR's value acknowledges every active error).
constexpr uint32_t OFFSET = 0x60;
constexpr Field CMDQ_ERR = bit(0);
constexpr Field EVTQ_ABT_ERR = bit(2);
constexpr Field PRIQ_ABT_ERR = bit(3);
constexpr Field MSI_CMDQ_ABT_ERR = bit(4);
constexpr Field MSI_EVTQ_ABT_ERR = bit(5);
constexpr Field MSI_PRIQ_ABT_ERR = bit(6);
constexpr Field MSI_GERROR_ABT_ERR = bit(7);
constexpr Field SFM_ERR = bit(8);
constexpr uint32_t MASK = 0x1fd;
}  // namespace GERROR
namespace GERRORN { constexpr uint32_t OFFSET = 0x64; }  // same fields as GERROR

// MSI configuration of the GERROR and EVTQ interrupts (IHI 0070 SMMU_GERROR_IRQ_CFGn and
// SMMU_EVTQ_IRQ_CFGn; the Linux header agrees).
namespace IRQ_CFG0 { constexpr Field ADDR = bits(51, 2); }
namespace IRQ_CFG2 {
constexpr Field MEMATTR = bits(3, 0);
constexpr Field SH = bits(5, 4);
}  // namespace IRQ_CFG2
namespace GERROR_IRQ_CFG0 { constexpr uint32_t OFFSET = 0x68; }
namespace GERROR_IRQ_CFG1 { constexpr uint32_t OFFSET = 0x70; }
namespace GERROR_IRQ_CFG2 { constexpr uint32_t OFFSET = 0x74; }

namespace STRTAB_BASE {
constexpr uint32_t OFFSET = 0x80;
constexpr Field ADDR = bits(51, 6);
constexpr Field RA = bit(62);
}  // namespace STRTAB_BASE
namespace STRTAB_BASE_CFG {
constexpr uint32_t OFFSET = 0x88;
constexpr Field LOG2SIZE = bits(5, 0);
constexpr Field SPLIT = bits(10, 6);
constexpr Field FMT = bits(17, 16);
constexpr uint64_t FMT_LINEAR = 0;
constexpr uint64_t FMT_2LVL = 1;
}  // namespace STRTAB_BASE_CFG

namespace Q_BASE {
// Common layout of CMDQ_BASE / EVTQ_BASE / PRIQ_BASE (facts 1.1).
constexpr Field LOG2SIZE = bits(4, 0);
constexpr Field ADDR = bits(51, 5);
constexpr Field RA = bit(62);
}  // namespace Q_BASE
namespace Q_PTR {
// PROD/CONS: the index in the low log2size bits, the wrap bit just above, the overflow flag in
// bit 31 (facts 1.1). Empty: index and wrap equal; full: index equal, wrap different.
constexpr Field WR_RD = bits(19, 0);       // index + wrap for the largest queue (2^19 entries)
constexpr Field OVFLG = bit(31);           // EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG
constexpr unsigned LOG2SIZE_MAX = 19;
}  // namespace Q_PTR

namespace CMDQ_BASE { constexpr uint32_t OFFSET = 0x90; }
namespace CMDQ_PROD { constexpr uint32_t OFFSET = 0x98; }
namespace CMDQ_CONS {
constexpr uint32_t OFFSET = 0x9c;
constexpr Field ERR = bits(30, 24);        // facts 1.1, 1.6 (commands.h: CommandError)
}  // namespace CMDQ_CONS

namespace EVTQ_BASE { constexpr uint32_t OFFSET = 0xa0; }
namespace EVTQ_PROD { constexpr uint32_t OFFSET = PAGE1 + 0xa8; }
namespace EVTQ_CONS { constexpr uint32_t OFFSET = PAGE1 + 0xac; }
namespace EVTQ_IRQ_CFG0 { constexpr uint32_t OFFSET = 0xb0; }
namespace EVTQ_IRQ_CFG1 { constexpr uint32_t OFFSET = 0xb8; }
namespace EVTQ_IRQ_CFG2 { constexpr uint32_t OFFSET = 0xbc; }

// Queue entry sizes (facts 1.1).
constexpr unsigned CMDQ_ENT_BYTES = 16;   // 2 qwords
constexpr unsigned EVTQ_ENT_BYTES = 32;   // 4 qwords
constexpr unsigned PRIQ_ENT_BYTES = 16;

}  // namespace nb::smmuv3
