// components/page_table/arm_lpae: the 64-bit VMSAv8-64 long descriptor as io-pgtable-arm writes
// it (facts 4.1, 4.2; DDI0487 D8.3 "Translation table descriptor formats").
//
// Owns: the descriptor's bit fields (declared once, below), the IOMMU prot flags, and the pure
// builders/decoders: prot → leaf attributes, output-address packing for 52-bit PAs, table
// descriptors, leaf/table/dirty tests.
// Does not own: where descriptors live or which level they sit at (io-page-table.h), geometry
// (geometry.h).
//
// Not modelled: the NS / NSTable quirk (IO_PGTABLE_QUIRK_ARM_NS), S2FWB, the contiguous hint
// (the kernel never sets it), SW_SYNC (non-coherent walkers only), the Mali and 32-bit formats.

#pragma once

#include "components/page_table/arm_lpae/geometry.h"
#include "util/bits.h"

#include <cstdint>

namespace nb::pt {

// ======================================================================================
// IOMMU prot flags (Linux IOMMU_*; same values, so they cross RPC unchanged).

enum class Prot : uint8_t {
  NONE = 0,
  READ = 1 << 0,    // IOMMU_READ
  WRITE = 1 << 1,   // IOMMU_WRITE
  CACHE = 1 << 2,   // IOMMU_CACHE: normal cacheable, inner shareable
  NOEXEC = 1 << 3,  // IOMMU_NOEXEC: XN
  MMIO = 1 << 4,    // IOMMU_MMIO: Device-nGnRE (wins over CACHE for the memory type)
  PRIV = 1 << 5,    // IOMMU_PRIV: privileged-only (stage 1: AP[1] clear)
};

constexpr Prot operator|(Prot a, Prot b) { return Prot(uint8_t(a) | uint8_t(b)); }
constexpr Prot operator&(Prot a, Prot b) { return Prot(uint8_t(a) & uint8_t(b)); }
constexpr bool hasAny(Prot set, Prot flags) { return (uint8_t(set) & uint8_t(flags)) != 0; }

// ======================================================================================
// Descriptor fields (one little-endian qword; facts 4.1). Values directly under their field.

constexpr Field PTE_TYPE = bits(1, 0);
  constexpr uint64_t PTE_TYPE_INVALID = 0;
  constexpr uint64_t PTE_TYPE_BLOCK = 1;   // leaf at levels 1-2
  constexpr uint64_t PTE_TYPE_TABLE = 3;   // next-level table at levels 0-2
  constexpr uint64_t PTE_TYPE_PAGE = 3;    // leaf at level 3 (the only leaf type there)
constexpr Field PTE_ATTRINDX = bits(4, 2);  // stage 1: MAIR index (geometry.h MAIR_ATTR_IDX_*)
constexpr Field PTE_MEMATTR = bits(5, 2);   // stage 2: memory type
  constexpr uint64_t PTE_MEMATTR_DEV = 0x1;   // Device-nGnRE
  constexpr uint64_t PTE_MEMATTR_NC = 0x5;    // normal inner+outer non-cacheable
  constexpr uint64_t PTE_MEMATTR_OIWB = 0xf;  // normal inner+outer write-back
constexpr Field PTE_NS = bit(5);            // stage 1, NS quirk only (not modelled)
constexpr Field PTE_AP_UNPRIV = bit(6);     // stage 1 AP[1]: EL0/unprivileged access
constexpr Field PTE_AP_RDONLY = bit(7);     // stage 1 AP[2]: read-only (also "dirty-clean")
constexpr Field PTE_S2AP = bits(7, 6);      // stage 2 HAP
  constexpr uint64_t PTE_S2AP_READ = 1;
  constexpr uint64_t PTE_S2AP_WRITE = 2;
constexpr Field PTE_SH = bits(9, 8);
  constexpr uint64_t PTE_SH_NS = 0;
  constexpr uint64_t PTE_SH_OS = 2;
  constexpr uint64_t PTE_SH_IS = 3;
constexpr Field PTE_AF = bit(10);
constexpr Field PTE_NG = bit(11);           // stage 1: not global (every io-pgtable S1 leaf)
constexpr Field PTE_OA = bits(47, 12);      // output address; PA[51:48] in [15:12] (64K, 52-bit)
constexpr Field PTE_DBM = bit(51);          // dirty bit modifier (HD quirk, stage 1 writable)
constexpr Field PTE_CONT = bit(52);         // contiguous hint: never set
constexpr Field PTE_XN = bits(54, 53);      // stage 1 PXN+UXN / stage 2 XN[1:0]
  constexpr uint64_t PTE_XN_ALL = 3;
constexpr Field PTE_SW_SYNC = bit(55);      // software bit, non-coherent walkers only
constexpr Field PTE_NSTABLE = bit(63);      // table descriptors, NS quirk only

// ======================================================================================
// Output address (paddr_to_iopte / iopte_to_paddr, facts 4.3).

constexpr uint64_t encodeOutputAddress(uint64_t pa) {
  // pte = (pa | pa >> 36) & [47:12]: PA[51:48] folds into PTE[15:12], which are zero in any
  // 64K-aligned PA. For PAs below 2^48 this is just pa & [47:12].
  return (pa | (pa >> 36)) & PTE_OA.mask();
}

constexpr uint64_t decodeOutputAddress(uint64_t pte, Granule granule) {
  // < 64K: pa = pte & [47:12]. 64K: pa = (v | v << 36) & [51:16], v = pte & [47:12].
  uint64_t v = pte & PTE_OA.mask();
  if (granule != Granule::SIZE_64K) return v;
  return (v | (v << 36)) & genmask(51, 16);
}

// ======================================================================================
// Builders (pure). A leaf is makeLeafAttributes(...) | leaf type | output address; the engine
// computes the attributes once per run and varies only the address.

constexpr uint64_t makeLeafAttributes(Format format, Prot prot, bool hd) {
  // arm_lpae_prot_to_pte (facts 4.2). Includes SH and AF; excludes type and address.
  uint64_t pte = 0;
  bool read = hasAny(prot, Prot::READ), write = hasAny(prot, Prot::WRITE);
  if (format == Format::STAGE1) {
    pte = PTE_NG.with(pte, 1);
    if (read && !write) {
      pte = PTE_AP_RDONLY.with(pte, 1);
    } else if (write && hd) {
      pte = PTE_DBM.with(pte, 1);  // writable-dirty: HTTU sets AP[2] to mark it clean (4.9)
    }
    if (!hasAny(prot, Prot::PRIV)) pte = PTE_AP_UNPRIV.with(pte, 1);
    uint64_t idx = hasAny(prot, Prot::MMIO)    ? MAIR_ATTR_IDX_DEV
                   : hasAny(prot, Prot::CACHE) ? MAIR_ATTR_IDX_CACHE
                                               : MAIR_ATTR_IDX_NC;
    pte = PTE_ATTRINDX.with(pte, idx);
  } else {
    uint64_t hap = (read ? PTE_S2AP_READ : 0) | (write ? PTE_S2AP_WRITE : 0);
    pte = PTE_S2AP.with(pte, hap);
    uint64_t memattr = hasAny(prot, Prot::MMIO)    ? PTE_MEMATTR_DEV
                       : hasAny(prot, Prot::CACHE) ? PTE_MEMATTR_OIWB
                                                   : PTE_MEMATTR_NC;
    pte = PTE_MEMATTR.with(pte, memattr);
  }
  // Shareability follows CACHE alone, MMIO or not (Linux does the same).
  pte = PTE_SH.with(pte, hasAny(prot, Prot::CACHE) ? PTE_SH_IS : PTE_SH_OS);
  if (hasAny(prot, Prot::NOEXEC)) pte = PTE_XN.with(pte, PTE_XN_ALL);
  pte = PTE_AF.with(pte, 1);
  return pte;
}

constexpr uint64_t leafType(uint32_t level) {
  return level == MAX_LEVELS - 1 ? PTE_TYPE_PAGE : PTE_TYPE_BLOCK;
}

constexpr uint64_t makeLeafPte(uint64_t attributes, uint64_t pa, uint32_t level) {
  return attributes | encodeOutputAddress(pa) | leafType(level);
}

constexpr uint64_t makeLeafPte(Format format, Prot prot, bool hd, uint64_t pa, uint32_t level) {
  return makeLeafPte(makeLeafAttributes(format, prot, hd), pa, level);
}

constexpr uint64_t makeTablePte(uint64_t tablePa) {
  // Same address packing as a leaf (facts 4.1); no NSTable, no SW_SYNC (coherent walker).
  return encodeOutputAddress(tablePa) | PTE_TYPE_TABLE;
}

constexpr uint64_t leafAttributesOf(uint64_t pte) {
  // Everything but type and address: what a split copies into the smaller leaves.
  return pte & ~(PTE_OA.mask() | PTE_TYPE.mask());
}

// ======================================================================================
// Tests on a descriptor found at `level` (iopte_leaf / iopte_table).

constexpr bool isLeaf(uint64_t pte, uint32_t level) {
  return PTE_TYPE.get(pte) == leafType(level);
}
constexpr bool isTable(uint64_t pte, uint32_t level) {
  return level < MAX_LEVELS - 1 && PTE_TYPE.get(pte) == PTE_TYPE_TABLE;
}
constexpr bool isDirty(uint64_t pte) {
  // (pte & (RDONLY | DBM)) == DBM: writable-dirty (facts 4.9).
  return (pte & (PTE_AP_RDONLY.mask() | PTE_DBM.mask())) == PTE_DBM.mask();
}

}  // namespace nb::pt
