// components/page_table/arm_lpae: one VMSAv8-64 long-descriptor IO page table built in nestbed
// physical memory: the io-pgtable-arm engine (ARM_64_LPAE_S1 / ARM_64_LPAE_S2) without RPC.
//
// Owns: the table pages (taken from a FrameSource, returned on unmap and destruction), one
// geometry-parameterised walker and its visitors (map, unmap, iova→phys, walk, dirty scan), the
// invalidations a change needs, and counters.
// Does not own: physical memory (PhysMem), the frames' allocator (FrameSource), issuing TLB
// invalidations (the caller does that with the returned list), or any RPC face.
//
// Which Linux function each method mirrors:
//   map()               iommu_map → io_pgtable_ops.map_pages   (arm_lpae_map_pages)
//   unmap()             iommu_unmap → io_pgtable_ops.unmap_pages (arm_lpae_unmap_pages)
//   iovaToPhys()        io_pgtable_ops.iova_to_phys
//   readAndClearDirty() io_pgtable_ops.read_and_clear_dirty
//   s1Config/s2Config   io_pgtable_cfg.arm_lpae_s1_cfg / arm_lpae_s2_cfg
//
// Table lifetime follows a policy (TableLifetime): LINUX (default) unmaps as io-pgtable-arm
// does (linux-invalidation-facts 1.1-1.3): the core's iommu_pgsize picks (pgsize, count), a
// table is freed only when an unmap's pgsize equals the span of the entry pointing to it (its
// subtree freed without reading a leaf), and the returned invalidations are Linux's callbacks
// in order. EAGER frees a table as soon as it holds no entries (nestbed's first design).
//
// Deliberate differences from io-pgtable-arm (each is explained where it is implemented):
//   - A block wanted where a table holding leaves sits gives EEXIST instead of silently
//     discarding those leaves; an empty table there is freed and replaced (facts 4.6 step 5).
//   - Partial unmap of a larger leaf follows a policy: REFUSE (Linux since v6.13), SPLIT
//     (Linux up to v6.12) or WHOLE_LEAF (generic_pt). A split piece's leaf invalidation names
//     the original block's size as its granule (so a TTL hint matches the cached block), where
//     Linux's add_page passes the piece's size.
//   - Holes stop unmap and dirty scans skip them; Linux iommu_unmap also stops short, and Linux
//     never asks for a dirty scan over a hole.
//
// Single-threaded: one owner calls in (a component's event loop). Descriptors are stored with
// release semantics, so a walker in another process sees whole descriptors. Freed table pages
// go back to the FrameSource at once; the caller must issue the returned invalidations before
// handing those frames to anything that a stale walk cache could read through.

#pragma once

#include "components/page_table/arm_lpae/descriptor.h"
#include "components/page_table/arm_lpae/geometry.h"
#include "hw/mem/frame-allocator.h"
#include "hw/mem/phys-mem.h"

#include <kj/array.h>
#include <kj/memory.h>
#include <kj/one-of.h>
#include <kj/vector.h>

namespace nb::pt {

enum class PartialUnmap : uint8_t {
  // What unmap() does when a range covers only part of a leaf larger than the range.
  REFUSE,      // unmap nothing of that leaf and stop (EINVAL): Linux since v6.13 (P-RM).
  SPLIT,       // replace the leaf with a next-level table lacking the piece: Linux <= v6.12.
  WHOLE_LEAF,  // unmap the whole leaf and count its full size: generic_pt (test_unmap_split).
};

enum class TableLifetime : uint8_t {
  // When unmap() frees a table page.
  LINUX,  // io-pgtable-arm (every kernel to date): only when an unmap's page size equals the
          // span of the entry pointing to the table; its subtree goes without reading leaves.
          // A 4K unmap never frees a table; empty tables stay until the domain is freed.
  EAGER,  // as soon as the table holds no entry (nestbed's first design; no Linux kernel).
};

struct TableConfig {
  Format format = Format::STAGE1;
  Granule granule = Granule::SIZE_4K;
  uint32_t ias = 48;  // input address bits: 32, 36, 40, 42, 44, 48, 52 (52 needs 64K)
  uint32_t oas = 48;  // output address bits, same set
  bool hd = false;    // IO_PGTABLE_QUIRK_ARM_HD: DBM on writable leaves (stage 1 only)
  PartialUnmap partialUnmap = PartialUnmap::REFUSE;
  TableLifetime lifetime = TableLifetime::LINUX;
};

PhysAddr tableFrameLimit(const TableConfig& config);
// Where a table's pages may be: below 2^OAS (a walker cannot address a table above it), and
// below 2^48 with the 4K/16K granules (only 64K descriptors carry PA[51:48], facts 4.3).

struct MapRun {
  uint64_t iova;  // granule aligned
  PhysAddr pa;    // granule aligned
  uint64_t size;  // non-zero multiple of the granule
  Prot prot;      // must include READ or WRITE
};

struct Invalidation {
  // One TLB invalidation the caller must issue after a change (Linux tlb_add_page/flush_walk).
  // Under TableLifetime::LINUX the list is io-pgtable-arm's callback sequence, in order: a walk
  // entry is one tlb_flush_walk(iova, size, granule) (one per freed table entry, never merged);
  // a leaf entry is a run of tlb_add_page(iova + k * granule, granule) calls over [iova,
  // iova + size), merged only with the previous entry when that is a leaf of the same granule
  // ending at iova (which iommu_iotlb_gather_add_page would merge too).
  uint64_t iova;
  uint64_t size;
  uint64_t granule;  // leaf: the add_page size (for a split, the original block's size);
                     // walk: the translation granule, as Linux flush_walk passes it.
  bool leaf;         // true: leaf entries only (TLBI ... Leaf=1); false: walk caches too.
  uint32_t range = 0;  // unmap: the index of the range it belongs to (entries of different
                       // ranges are never merged: each range is its own iommu_unmap)
};

struct MapResult {
  uint64_t bytesMapped = 0;     // runs before failedIndex, plus the mapped head of that run
  kj::Maybe<size_t> failedIndex;  // the run that failed; null when all runs were mapped
  Errno error = Errno::OK;        // why it failed: INVAL, RANGE, EXIST, NOMEM
  kj::Vector<Invalidation> invalidations;  // walk flushes for tables freed (empty on success
                                           // unless an empty table was replaced by a block)
};

struct UnmapRange {
  uint64_t iova;  // granule aligned
  uint64_t size;  // non-zero multiple of the granule
};

struct UnmapResult {
  uint64_t bytesUnmapped = 0;  // with WHOLE_LEAF this can exceed the sizes asked for
  kj::Vector<Invalidation> invalidations;  // in iova order; contiguous entries coalesced
  kj::Maybe<size_t> stoppedIndex;  // the range where unmapping stopped; null when all done
  Errno error = Errno::OK;  // NOENT hole, INVAL bad range / refused partial, RANGE beyond
                            // IAS, NOMEM no table for a split
};

struct WalkStep {
  uint32_t level;
  PhysAddr descriptorPa;
  uint64_t descriptor;
};

struct DirtyBitmap {
  // One bit per granule page of [iova, iova + pages * pageSize), 64 pages per word, LSB first
  // (the iommufd bitmap layout).
  uint64_t iova;
  uint64_t pageSize;
  uint64_t pages;
  kj::Array<uint64_t> words;

  bool test(uint64_t page) const { return (words[page / 64] >> (page % 64)) & 1; }
  uint64_t count() const;
};

class IoPageTable {
public:
  static kj::OneOf<kj::Own<IoPageTable>, Errno> create(PhysMem& mem, FrameSource& frames,
                                                       const TableConfig& config);
  // EINVAL for a bad geometry (makeGeometry), EOPNOTSUPP for HD on stage 2, ENOMEM if no PGD
  // below tableFrameLimit(config) (every table page comes from below it; Linux's io-pgtable
  // also fails with ENOMEM when a table page is out of the walker's reach).

  IoPageTable(PhysMem& mem, FrameSource& frames, const TableConfig& config);
  // Same, but a bad config or no memory is the caller's broken contract (throws).

  ~IoPageTable() noexcept(false);
  // Frees every table page, the PGD included.
  KJ_DISALLOW_COPY(IoPageTable);

  // implements the io_pgtable_ops ---------------------------------------------------------

  MapResult map(kj::ArrayPtr<const MapRun> runs);
  // Maps the runs in order, each split into the largest aligned leaves the table allows. Stops
  // at the first failure, leaving everything before it mapped.
  UnmapResult unmap(kj::ArrayPtr<const UnmapRange> ranges);
  // Unmaps the ranges in order, stopping at a hole or a refused partial leaf. Tables are freed
  // as the config's TableLifetime says.
  void unmap(kj::ArrayPtr<const UnmapRange> ranges, UnmapResult& result);
  // The same into `result`, reset first; its invalidation list keeps its storage, so a caller
  // that unmaps a page per call with one UnmapResult allocates nothing (what the stack-held
  // iommu_iotlb_gather is to a Linux caller of unmap_pages).
  kj::Maybe<uint64_t> iovaToPhys(uint64_t iova) const;
  // Null when nothing is mapped there or the iova is beyond IAS.
  kj::Vector<WalkStep> walk(uint64_t iova) const;
  // The descriptors a hardware walk reads, down to the leaf or the first invalid one. Empty
  // beyond IAS.
  kj::OneOf<DirtyBitmap, Errno> readAndClearDirty(uint64_t iova, uint64_t size, bool noClear);
  // Stage 1 with HD only (else EINVAL); granule-aligned range within IAS (else EINVAL).
  // Dirty leaves set their pages' bits and, unless noClear, become writable-clean (AP[2] set).

  // implements the io_pgtable_cfg outputs ---------------------------------------------------

  S1Config s1Config() const;  // stage 1 only
  S2Config s2Config() const;  // stage 2 only
  PhysAddr rootPa() const { return root_; }
  const Geometry& geometry() const { return geometry_; }
  const TableConfig& config() const { return config_; }

  // accounting ------------------------------------------------------------------------------

  struct Stats {
    uint64_t ptesWritten = 0;     // descriptor stores: leaves, tables and clears
    uint64_t tablesAllocated = 0; // table pages taken from the FrameSource (PGD included)
    uint64_t tablesFreed = 0;     // table pages given back
    uint64_t unmapLastLevelReads = 0;  // last-level descriptors unmap read (walk, freeing,
                                       // emptiness scans): 0 for an aligned 1 GiB unmap under
                                       // TableLifetime::LINUX
  };
  const Stats& stats() const { return stats_; }
  uint64_t tablePagesInUse() const { return tablePages_; }
  // Table pages held, the PGD counting as one.
  uint64_t tableBytesInUse() const { return tableBytes_; }
  // Frame bytes held (the PGD rounded up to 4 KiB).

  class Passkey {
    // Lets create() use kj::heap with a constructor nobody else can call.
    Passkey() = default;
    friend class IoPageTable;
  };
  IoPageTable(Passkey, PhysMem& mem, FrameSource& frames, const TableConfig& config,
              const Geometry& geometry, PhysAddr pgd);

private:
  enum class Step : uint8_t { NEXT, DESCEND, STOP };
  struct Slot;
  struct MapVisitor;
  struct UnmapVisitor;
  struct WalkVisitor;
  struct DirtyVisitor;

  bool mapPageFast(const MapRun& run);
  bool unmapPageFast(const UnmapRange& range, uint32_t index, UnmapResult& result);
  uint64_t iommuPgsize(uint64_t iova, uint64_t remaining, uint64_t& count) const;
  uint64_t unmapPages(uint64_t iova, uint64_t pgsize, uint64_t count, UnmapResult& result,
                      Errno& error);
  Errno unmapLinux(const UnmapRange& range, UnmapResult& result);
  void freePgtable(PhysAddr table, uint32_t level);

  template <typename Visitor>
  Step walkTable(uint32_t level, PhysAddr table, uint64_t from, uint64_t to, Visitor& v) const;
  // The one walker: visits every descriptor of `table` that [from, to) touches, in iova order;
  // descends where the visitor says so.

  static kj::OneOf<Geometry, Errno> checkConfig(const TableConfig& config);
  uint64_t pgdAllocBytes() const;
  kj::Maybe<PhysAddr> allocTable(bool zero = true);
  void freeTable(PhysAddr table);
  void freeSubtables(PhysAddr table, uint32_t level);
  bool tableEmpty(PhysAddr table, uint32_t level, uint64_t hint) const;
  bool subtreeHasLeaf(PhysAddr table, uint32_t level) const;
  uint64_t* entriesOf(PhysAddr table, uint32_t level) const;
  uint64_t* tableAt(PhysAddr table) const;
  [[noreturn]] void badTable(PhysAddr table) const;
  uint64_t fastIndex(uint64_t iova, uint32_t level) const {
    return (iova >> fast_.shift[level]) & fast_.mask[level];
  }
  static uint64_t loadPte(const uint64_t* ptep);
  void writePte(uint64_t* ptep, uint64_t pte);
  void fillLeaves(PhysAddr table, uint32_t level, uint64_t attributes, PhysAddr pa);
  PhysAddr tableAddress(uint64_t pte) const;

  PhysMem& mem_;
  FrameSource& frames_;
  TableConfig config_;
  Geometry geometry_;
  PhysAddr root_;
  Stats stats_;
  uint64_t tablePages_ = 0;
  uint64_t tableBytes_ = 0;
  kj::Vector<Invalidation> rangeScratch_;  // one range's invalidations (unmap), reused
  struct Fast {
    // What the one-page paths (mapPageFast, unmapPageFast, iovaToPhys) walk with, computed once:
    // per level the index shift and mask, and the memory a table descriptor may point into.
    uint32_t shift[MAX_LEVELS] = {};
    uint64_t mask[MAX_LEVELS] = {};
    kj::byte* host = nullptr;  // the PhysMem mapping of memBase
    PhysAddr memBase = 0;
    uint64_t tableSpan = 0;    // a table page at memBase + [0, tableSpan] lies inside memory
    uint64_t* root = nullptr;  // the PGD's entries
  } fast_;
};

}  // namespace nb::pt
