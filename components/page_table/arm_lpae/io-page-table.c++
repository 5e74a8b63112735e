// components/page_table/arm_lpae: the page-table engine: one walker, five visitors, and the
// table-page bookkeeping. See io-page-table.h for the contract and the differences from Linux.

#include "components/page_table/arm_lpae/io-page-table.h"

#include "util/bits.h"

#include <kj/debug.h>

namespace nb::pt {

namespace {

void addInvalidation(kj::Vector<Invalidation>& list, const Invalidation& inv) {
  // Coalesce with the previous entry when contiguous and of the same kind: a 1 GiB unmap of
  // 4K pages is one entry, not 262144.
  if (list.size() > 0) {
    Invalidation& last = list.back();
    if (last.leaf == inv.leaf && last.granule == inv.granule && last.iova + last.size == inv.iova) {
      last.size += inv.size;
      return;
    }
  }
  list.add(inv);
}

void addWalkInvalidation(kj::Vector<Invalidation>& list, uint64_t base, uint64_t size,
                         uint64_t granule) {
  // A table covering [base, base + size) was freed: one non-leaf invalidation of its span also
  // removes every leaf cached under it, so entries already listed inside the span are dropped
  // (entries are in iova order, so they are at the tail) and one straddling entry is trimmed.
  while (list.size() > 0) {
    Invalidation& last = list.back();
    if (last.iova >= base && last.iova + last.size <= base + size) {
      list.removeLast();
      continue;
    }
    if (last.iova < base && last.iova + last.size > base) last.size = base - last.iova;
    break;
  }
  addInvalidation(list, Invalidation{base, size, granule, false});
}

uint64_t highestBit(uint64_t v) { return uint64_t(1) << (63 - __builtin_clzll(v)); }

void setBits(kj::ArrayPtr<uint64_t> words, uint64_t first, uint64_t count) {
  uint64_t i = first, end = first + count;
  while (i < end) {
    uint64_t bitIdx = i % 64;
    uint64_t n = kj::min(64 - bitIdx, end - i);
    words[i / 64] |= (n == 64 ? ~uint64_t(0) : ((uint64_t(1) << n) - 1)) << bitIdx;
    i += n;
  }
}

}  // namespace

uint64_t DirtyBitmap::count() const {
  uint64_t n = 0;
  for (uint64_t w : words) n += uint64_t(__builtin_popcountll(w));
  return n;
}

// =======================================================================================
// Descriptor access (inline: the project builds with -O1, which inlines only what says so)

inline uint64_t* IoPageTable::entriesOf(PhysAddr table, uint32_t level) const {
  // Descriptor access goes through the PhysMem mapping with the same atomics as
  // PhysMem::load64/store64 (acquire loads, release stores: a walker in another process never
  // sees a torn descriptor), but the range check is done once per table page instead of once
  // per descriptor: per-access checks cost more than the rest of a bulk map.
  uint64_t bytes = geometry_.tableBytes(level);
  KJ_ASSERT(mem_.contains(table, bytes) && isAligned(table, 8), "table outside physical memory",
            table, bytes);
  return reinterpret_cast<uint64_t*>(mem_.bytes().begin() + (table - mem_.base()));
}

inline uint64_t* IoPageTable::tableAt(PhysAddr table) const {
  // entriesOf for a table below the start level (one granule) on the one-page paths: one
  // compare instead of the general range check. A table descriptor pointing outside memory (a
  // corrupted table) throws the same error.
  const uint64_t offset = table - fast_.memBase;
  if (KJ_UNLIKELY(offset > fast_.tableSpan)) badTable(table);
  return reinterpret_cast<uint64_t*>(fast_.host + offset);
}

void IoPageTable::badTable(PhysAddr table) const {
  KJ_FAIL_ASSERT("table outside physical memory", table, geometry_.pageSize());
}

inline uint64_t IoPageTable::loadPte(const uint64_t* ptep) {
  return __atomic_load_n(ptep, __ATOMIC_ACQUIRE);
}

inline void IoPageTable::writePte(uint64_t* ptep, uint64_t pte) {
  __atomic_store_n(ptep, pte, __ATOMIC_RELEASE);
  stats_.ptesWritten++;
}

void IoPageTable::fillLeaves(PhysAddr table, uint32_t level, uint64_t attributes, PhysAddr pa) {
  // Every entry of a table not yet installed: leaves of consecutive output addresses from `pa`.
  // Plain stores: no walker can reach the table before the release store that installs it, which
  // orders them. Below 2^48 the output address field is the address itself, so each leaf is the
  // previous one plus the block size (a loop the compiler vectorises); above, encode each.
  const uint64_t size = geometry_.blockSize(level), n = geometry_.entries(level);
  uint64_t* entries = entriesOf(table, level);
  if (pa + n * size <= (uint64_t(1) << 48)) {
    const uint64_t first = makeLeafPte(attributes, pa, level);
    for (uint64_t i = 0; i < n; i++) entries[i] = first + i * size;
  } else {
    for (uint64_t i = 0; i < n; i++) entries[i] = makeLeafPte(attributes, pa + i * size, level);
  }
  stats_.ptesWritten += n;
}

inline PhysAddr IoPageTable::tableAddress(uint64_t pte) const {
  return decodeOutputAddress(pte, geometry_.granule);
}

// =======================================================================================
// The walker

struct IoPageTable::Slot {
  // One descriptor the walk reached, and which part of the walked range it translates.
  uint32_t level;
  PhysAddr ptePa;
  uint64_t* ptep;     // the descriptor in the PhysMem mapping (see entriesOf)
  uint64_t pte;       // as loaded; a visitor that rewrites the descriptor updates it
  uint64_t base;      // first iova the descriptor translates
  uint64_t size;      // bytes it translates: the block size at this level
  uint64_t from, to;  // the walked range's part inside [base, base + size)

  bool whole() const { return from == base && to - base == size; }
};

template <typename Visitor>
IoPageTable::Step IoPageTable::walkTable(uint32_t level, PhysAddr table, uint64_t from,
                                         uint64_t to, Visitor& v) const {
  // Geometry comes from (start level, pgdBits, bitsPerLevel): levelShift/index/blockSize.
  // Recursion depth is at most four; a visit handles one descriptor, but the loop stays inside
  // one table page for every slot the range touches there, so a bulk map fills a whole page
  // per descent instead of re-walking from the root for each PTE (like map_pages' pgcount).
  Slot s;
  s.level = level;
  s.size = geometry_.blockSize(level);
  uint64_t idx = geometry_.index(from, level);
  uint64_t* entries = entriesOf(table, level);
  for (uint64_t cur = from; cur < to; idx++) {
    s.ptePa = table + idx * 8;
    s.ptep = entries + idx;
    s.pte = loadPte(s.ptep);
    s.base = alignDown(cur, s.size);
    s.from = cur;
    s.to = kj::min(to, s.base + s.size);
    Step step = v.visit(s);
    if (step == Step::DESCEND) {
      step = walkTable(level + 1, tableAddress(s.pte), s.from, s.to, v);
      step = v.leave(s, step);
    }
    if (step == Step::STOP) return step;
    cur = s.to;
  }
  return Step::NEXT;
}

// =======================================================================================
// Visitors

struct IoPageTable::MapVisitor {
  // Facts 4.6 (arm_lpae_map_pages / __arm_lpae_map / arm_lpae_init_pte) for one run.
  IoPageTable& t;
  uint64_t attributes;   // leaf bits but type and address, computed once per run
  uint64_t paMinusIova;  // pa of an iova = iova + paMinusIova (mod 2^64)
  kj::Vector<Invalidation>& invalidations;
  uint64_t mapped = 0;
  Errno error = Errno::OK;

  MapVisitor(IoPageTable& t, const MapRun& run, kj::Vector<Invalidation>& invalidations)
      : t(t),
        attributes(makeLeafAttributes(t.config_.format, run.prot, t.config_.hd)),
        paMinusIova(run.pa - run.iova),
        invalidations(invalidations) {}

  Step fail(Errno e) {
    error = e;
    return Step::STOP;
  }

  Step visit(Slot& s) {
    const Geometry& g = t.geometry_;
    uint64_t pa = s.from + paMinusIova;
    // The largest leaf the table allows: the first level (walking down) whose block the run
    // covers whole, with iova and pa both aligned to it.
    if (s.whole() && g.leafAllowed(s.level) && isAligned(pa, s.size)) {
      if (s.pte != 0) {
        // An existing leaf: EEXIST, "we require an unmap first" (4.6 step 5).
        if (!isTable(s.pte, s.level)) return fail(Errno::EXIST);
        // An existing table where a block is wanted. Linux unmaps and frees it whatever it
        // holds, silently dropping live mappings; here a table holding leaves is a mapping
        // in the way (EEXIST), and only a leafless one is freed and replaced (with the
        // flush_walk Linux issues). Common under the linux lifetime (4K unmaps leave empty
        // tables behind), rare under eager.
        PhysAddr child = t.tableAddress(s.pte);
        if (t.subtreeHasLeaf(child, s.level + 1)) return fail(Errno::EXIST);
        t.writePte(s.ptep, 0);
        t.freeSubtables(child, s.level + 1);
        t.freeTable(child);
        addWalkInvalidation(invalidations, s.base, s.size, g.pageSize());
      }
      t.writePte(s.ptep, makeLeafPte(attributes, pa, s.level));
      mapped += s.size;
      return Step::NEXT;
    }
    // Runs are granule aligned, so level 3 always takes the branch above.
    KJ_ASSERT(s.level < MAX_LEVELS - 1, "no leaf fits at the last level", s.from, s.to);
    uint32_t childLevel = s.level + 1;
    if (s.pte == 0 && s.whole() && g.leafAllowed(childLevel) &&
        isAligned(pa, g.blockSize(childLevel))) {
      // The run covers this slot whole and every next-level entry can be a leaf: build the
      // table full of leaves, then install it (no zeroing, no descent; what the walk would
      // produce, one table page per visit, and a walker never sees it half filled).
      KJ_IF_MAYBE(child, t.allocTable(false)) {
        t.fillLeaves(*child, childLevel, attributes, pa);
        t.writePte(s.ptep, makeTablePte(*child));
        mapped += s.size;
        return Step::NEXT;
      }
      return fail(Errno::NOMEM);
    }
    if (s.pte == 0) {
      KJ_IF_MAYBE(child, t.allocTable()) {
        s.pte = makeTablePte(*child);
        t.writePte(s.ptep, s.pte);
        return Step::DESCEND;
      }
      return fail(Errno::NOMEM);
    }
    if (isTable(s.pte, s.level)) return Step::DESCEND;
    // Inside a bigger leaf (4.6 step 6).
    return fail(Errno::EXIST);
  }

  Step leave(Slot& s, Step step) {
    // Only a failure can leave an empty table behind: one this run allocated above the point
    // where it ran out of frames. Linux keeps it (TableLifetime::LINUX); EAGER frees it so that
    // every non-root table holds an entry (and reports the walk flush, since a walker may have
    // cached the pointer).
    if (step == Step::STOP && t.config_.lifetime == TableLifetime::EAGER) {
      PhysAddr child = t.tableAddress(s.pte);
      if (t.tableEmpty(child, s.level + 1, t.geometry_.index(s.from, s.level + 1))) {
        t.writePte(s.ptep, 0);
        t.freeTable(child);
        addWalkInvalidation(invalidations, s.base, s.size, t.geometry_.pageSize());
      }
    }
    return step;
  }
};

struct IoPageTable::UnmapVisitor {
  // TableLifetime::EAGER: facts 4.7 (arm_lpae_unmap_pages / __arm_lpae_unmap) for one range,
  // plus freeing tables once empty and the partial-unmap policy.
  IoPageTable& t;
  kj::Vector<Invalidation>& invalidations;
  uint64_t unmapped = 0;
  Errno error = Errno::OK;
  uint64_t splitGranule = 0;  // inside tables made by a split: the original leaf's size
  uint32_t splitLevel = 0;    // level of that original leaf
  // Per level, for the table currently visited at that level: descriptors cleared in this
  // descent, and the index of the last one.
  uint64_t clearedCount[MAX_LEVELS + 1] = {};
  uint64_t lastCleared[MAX_LEVELS + 1] = {};

  UnmapVisitor(IoPageTable& t, kj::Vector<Invalidation>& invalidations)
      : t(t), invalidations(invalidations) {}

  Step fail(Errno e) {
    error = e;
    return Step::STOP;
  }

  Step visit(Slot& s) {
    if (s.level == MAX_LEVELS - 1) t.stats_.unmapLastLevelReads++;
    if (isTable(s.pte, s.level)) return Step::DESCEND;
    // A hole: Linux WARNs and returns what it unmapped so far (4.7 step 2/3).
    if (!isLeaf(s.pte, s.level)) return fail(Errno::NOENT);
    if (!s.whole()) {
      switch (t.config_.partialUnmap) {
        case PartialUnmap::REFUSE:
          // "Unmap of a partial large IOPTE is not allowed": nothing of this leaf goes.
          return fail(Errno::INVAL);
        case PartialUnmap::WHOLE_LEAF:
          break;  // generic_pt: the whole leaf goes and counts.
        case PartialUnmap::SPLIT:
          return split(s);
      }
    }
    t.writePte(s.ptep, 0);
    markCleared(s);
    unmapped += s.size;
    // A TLB may hold the leaf at the size it was created with: for pieces of a split block that
    // is the original block (so a TTL-hinted invalidation still matches it).
    addInvalidation(invalidations,
                    Invalidation{s.base, s.size, kj::max(s.size, splitGranule), true});
    return Step::NEXT;
  }

  void markCleared(const Slot& s) {
    clearedCount[s.level]++;
    lastCleared[s.level] = t.geometry_.index(s.base, s.level);
  }

  Step split(Slot& s) {
    // arm_lpae_split_blk_unmap (pre-6.14): replace the block by a full next-level table of
    // smaller leaves with the same attributes, then let the walk unmap the piece inside it
    // (splitting again if the piece is smaller than the next level's leaves).
    const Geometry& g = t.geometry_;
    uint32_t level = s.level + 1;
    KJ_ASSERT(level < MAX_LEVELS && g.leafAllowed(level));
    // Every entry is written before the table is installed: no need to zero it.
    KJ_IF_MAYBE(child, t.allocTable(false)) {
      t.fillLeaves(*child, level, leafAttributesOf(s.pte), decodeOutputAddress(s.pte, g.granule));
      s.pte = makeTablePte(*child);
      t.writePte(s.ptep, s.pte);
      if (splitGranule == 0) {
        splitGranule = s.size;
        splitLevel = s.level;
      }
      return Step::DESCEND;
    }
    return fail(Errno::NOMEM);
  }

  Step leave(Slot& s, Step step) {
    uint32_t childLevel = s.level + 1;
    // Only a table that lost a descriptor in this descent can have become empty, so the scan
    // (early-exit) runs only there, and not at all when every one of its entries was cleared.
    if (clearedCount[childLevel] > 0) {
      uint64_t count = clearedCount[childLevel];
      clearedCount[childLevel] = 0;
      PhysAddr child = t.tableAddress(s.pte);
      if (count == t.geometry_.entries(childLevel) ||
          t.tableEmpty(child, childLevel, lastCleared[childLevel])) {
        t.writePte(s.ptep, 0);
        t.freeTable(child);
        markCleared(s);
        addWalkInvalidation(invalidations, s.base, s.size, t.geometry_.pageSize());
      }
    }
    if (splitGranule != 0 && splitLevel == s.level) splitGranule = 0;
    return step;
  }
};

struct IoPageTable::WalkVisitor {
  kj::Vector<WalkStep>& steps;

  Step visit(Slot& s) {
    steps.add(WalkStep{s.level, s.ptePa, s.pte});
    return isTable(s.pte, s.level) ? Step::DESCEND : Step::STOP;
  }
  Step leave(Slot&, Step step) { return step; }
};

struct IoPageTable::DirtyVisitor {
  // Facts 4.9 (arm_lpae_read_and_clear_dirty).
  IoPageTable& t;
  DirtyBitmap& bitmap;
  bool noClear;

  Step visit(Slot& s) {
    if (isTable(s.pte, s.level)) return Step::DESCEND;
    if (!isLeaf(s.pte, s.level) || !isDirty(s.pte)) return Step::NEXT;
    setBits(bitmap.words, (s.from - bitmap.iova) / bitmap.pageSize,
            (s.to - s.from) / bitmap.pageSize);
    if (!noClear) {
      // Writable-dirty → writable-clean by setting AP[2]. The SMMU's HTTU may update the
      // descriptor concurrently (it clears AP[2] on a write), so compare-and-swap.
      uint64_t expected = s.pte;
      while (!t.mem_.compareExchange64(s.ptePa, expected, expected | PTE_AP_RDONLY.mask())) {
        if (!isDirty(expected)) break;
      }
      t.stats_.ptesWritten++;
    }
    return Step::NEXT;
  }
  Step leave(Slot&, Step step) { return step; }
};

// =======================================================================================
// Construction

kj::OneOf<Geometry, Errno> IoPageTable::checkConfig(const TableConfig& config) {
  auto geometry = makeGeometry(config.format, config.granule, config.ias, config.oas);
  if (geometry.is<Errno>()) return geometry;
  // The HD quirk is on the stage-1 whitelist only (facts 4.3, 4.9).
  if (config.hd && config.format != Format::STAGE1) return Errno::OPNOTSUPP;
  switch (config.partialUnmap) {
    case PartialUnmap::REFUSE: case PartialUnmap::SPLIT: case PartialUnmap::WHOLE_LEAF: break;
    default: return Errno::INVAL;
  }
  return geometry;
}

PhysAddr tableFrameLimit(const TableConfig& config) {
  uint32_t bits = kj::min(config.oas, config.granule == Granule::SIZE_64K ? 52u : 48u);
  return PhysAddr(1) << bits;
}

kj::OneOf<kj::Own<IoPageTable>, Errno> IoPageTable::create(PhysMem& mem, FrameSource& frames,
                                                           const TableConfig& config) {
  auto checked = checkConfig(config);
  if (checked.is<Errno>()) return checked.get<Errno>();
  const Geometry& geometry = checked.get<Geometry>();
  // The PGD is aligned to its size (TTBR/VTTBR alignment), rounded up to whole frames.
  uint64_t bytes = alignUp(geometry.pgdBytes, FRAME_SIZE);
  KJ_IF_MAYBE(pgd, frames.allocFramesBelow(bytes, bytes, tableFrameLimit(config))) {
    return kj::heap<IoPageTable>(Passkey(), mem, frames, config, geometry, *pgd);
  }
  return Errno::NOMEM;
}

namespace {

Geometry requireGeometry(kj::OneOf<Geometry, Errno> checked) {
  if (checked.is<Errno>()) {
    KJ_FAIL_REQUIRE("invalid page-table config", errnoName(checked.get<Errno>()));
  }
  return checked.get<Geometry>();
}

PhysAddr requirePgd(FrameSource& frames, const Geometry& geometry, const TableConfig& config) {
  uint64_t bytes = alignUp(geometry.pgdBytes, FRAME_SIZE);
  return KJ_REQUIRE_NONNULL(frames.allocFramesBelow(bytes, bytes, tableFrameLimit(config)),
                            "no frames for the PGD", bytes);
}

}  // namespace

IoPageTable::IoPageTable(PhysMem& mem, FrameSource& frames, const TableConfig& config)
    : IoPageTable(Passkey(), mem, frames, config, requireGeometry(checkConfig(config)),
                  requirePgd(frames, requireGeometry(checkConfig(config)), config)) {}

IoPageTable::IoPageTable(Passkey, PhysMem& mem, FrameSource& frames, const TableConfig& config,
                         const Geometry& geometry, PhysAddr pgd)
    : mem_(mem), frames_(frames), config_(config), geometry_(geometry), root_(pgd) {
  mem_.zero(root_, pgdAllocBytes());
  for (uint32_t level = geometry_.startLevel; level < MAX_LEVELS; level++) {
    fast_.shift[level] = geometry_.levelShift(level);
    fast_.mask[level] = geometry_.entries(level) - 1;
  }
  fast_.host = mem_.bytes().begin();
  fast_.memBase = mem_.base();
  KJ_REQUIRE(mem_.size() >= geometry_.pageSize(), "memory smaller than one table page");
  fast_.tableSpan = mem_.size() - geometry_.pageSize();
  fast_.root = entriesOf(root_, geometry_.startLevel);
  stats_.tablesAllocated = 1;
  tablePages_ = 1;
  tableBytes_ = pgdAllocBytes();
}

IoPageTable::~IoPageTable() noexcept(false) {
  freeSubtables(root_, geometry_.startLevel);
  frames_.freeFrames(root_, pgdAllocBytes());
  stats_.tablesFreed++;
  tablePages_--;
  tableBytes_ -= pgdAllocBytes();
}

// =======================================================================================
// Table pages

uint64_t IoPageTable::pgdAllocBytes() const { return alignUp(geometry_.pgdBytes, FRAME_SIZE); }

kj::Maybe<PhysAddr> IoPageTable::allocTable(bool zero) {
  // Levels below the start hold one granule-sized, granule-aligned page each. `zero` false
  // only for a caller that writes every entry before the table becomes reachable.
  uint64_t bytes = geometry_.pageSize();
  KJ_IF_MAYBE(pa, frames_.allocFramesBelow(bytes, bytes, tableFrameLimit(config_))) {
    if (zero) mem_.zero(*pa, bytes);
    stats_.tablesAllocated++;
    tablePages_++;
    tableBytes_ += bytes;
    return *pa;
  }
  return nullptr;
}

void IoPageTable::freeTable(PhysAddr table) {
  uint64_t bytes = geometry_.pageSize();
  frames_.freeFrames(table, bytes);
  stats_.tablesFreed++;
  tablePages_--;
  tableBytes_ -= bytes;
}

void IoPageTable::freeSubtables(PhysAddr table, uint32_t level) {
  // Frees every table below `table` (not `table` itself). Descriptors in the freed pages are
  // left as they are: the pages are going away and get zeroed when next allocated.
  if (level >= MAX_LEVELS - 1) return;
  const uint64_t* entries = entriesOf(table, level);
  for (uint64_t i = 0; i < geometry_.entries(level); i++) {
    uint64_t pte = loadPte(entries + i);
    if (isTable(pte, level)) {
      PhysAddr child = tableAddress(pte);
      freeSubtables(child, level + 1);
      freeTable(child);
    }
  }
}

void IoPageTable::freePgtable(PhysAddr table, uint32_t level) {
  // __arm_lpae_free_pgtable: depth first; a last-level table is freed without reading any of
  // its entries, an intermediate one is read only to find its child tables.
  if (level < MAX_LEVELS - 1) {
    const uint64_t* entries = entriesOf(table, level);
    for (uint64_t i = 0, n = geometry_.entries(level); i < n; i++) {
      uint64_t pte = loadPte(entries + i);
      if (isTable(pte, level)) freePgtable(tableAddress(pte), level + 1);
    }
  }
  freeTable(table);
}

bool IoPageTable::tableEmpty(PhysAddr table, uint32_t level, uint64_t hint) const {
  // Scans outward from `hint` (the last entry cleared): a table being emptied in any order
  // usually has a live neighbour close by, so draining a table entry by entry costs about
  // n log n probes instead of the n^2 of a scan from index 0.
  uint64_t n = geometry_.entries(level);
  const uint64_t* entries = entriesOf(table, level);
  // Counted as if the whole table were read (an upper bound; eager lifetime only).
  if (level == MAX_LEVELS - 1) const_cast<IoPageTable*>(this)->stats_.unmapLastLevelReads += n;
  for (uint64_t d = 1; d < n; d++) {
    bool inRange = false;
    if (hint + d < n) {
      inRange = true;
      if (loadPte(entries + hint + d) != 0) return false;
    }
    if (d <= hint) {
      inRange = true;
      if (loadPte(entries + hint - d) != 0) return false;
    }
    if (!inRange) break;
  }
  return loadPte(entries + hint) == 0;
}

bool IoPageTable::subtreeHasLeaf(PhysAddr table, uint32_t level) const {
  const uint64_t* entries = entriesOf(table, level);
  for (uint64_t i = 0; i < geometry_.entries(level); i++) {
    uint64_t pte = loadPte(entries + i);
    if (isLeaf(pte, level)) return true;
    if (isTable(pte, level) && subtreeHasLeaf(tableAddress(pte), level + 1)) return true;
  }
  return false;
}


// =======================================================================================
// Operations

MapResult IoPageTable::map(kj::ArrayPtr<const MapRun> runs) {
  MapResult result;
  const Geometry& g = geometry_;
  for (size_t i = 0; i < runs.size(); i++) {
    const MapRun& run = runs[i];
    // Checks in Linux's order (iommu_map, then arm_lpae_map_pages, facts 4.6 steps 1-3).
    Errno error = Errno::OK;
    if (run.size == 0 || !isAligned(run.iova | run.pa | run.size, g.pageSize())) {
      error = Errno::INVAL;
    } else if (run.size > g.inputLimit() || run.iova > g.inputLimit() - run.size ||
               run.size > g.outputLimit() || run.pa > g.outputLimit() - run.size) {
      error = Errno::RANGE;
    } else if (!hasAny(run.prot, Prot::READ | Prot::WRITE)) {
      error = Errno::INVAL;
    } else if (run.size == g.pageSize() && mapPageFast(run)) {
      result.bytesMapped += run.size;
    } else {
      MapVisitor v(*this, run, result.invalidations);
      walkTable(g.startLevel, root_, run.iova, run.iova + run.size, v);
      result.bytesMapped += v.mapped;
      error = v.error;
    }
    if (error != Errno::OK) {
      result.error = error;
      result.failedIndex = i;
      break;
    }
  }
  return result;
}

bool IoPageTable::mapPageFast(const MapRun& run) {
  // One page whose tables all exist and whose last-level entry is empty: exactly what
  // MapVisitor does there (descend through each table, write the page leaf), as a loop.
  // Anything else (a table to allocate, an entry in the way) returns false for the visitor.
  const Geometry& g = geometry_;
  uint64_t* entries = fast_.root;
  for (uint32_t level = g.startLevel; level < MAX_LEVELS - 1; level++) {
    const uint64_t pte = loadPte(entries + fastIndex(run.iova, level));
    if (!isTable(pte, level)) return false;
    entries = tableAt(tableAddress(pte));
  }
  constexpr uint32_t LAST = MAX_LEVELS - 1;
  uint64_t* ptep = entries + fastIndex(run.iova, LAST);
  if (loadPte(ptep) != 0 || !g.leafAllowed(LAST)) return false;
  writePte(ptep, makeLeafPte(makeLeafAttributes(config_.format, run.prot, config_.hd), run.pa,
                             LAST));
  return true;
}

uint64_t IoPageTable::iommuPgsize(uint64_t iova, uint64_t remaining, uint64_t& count) const {
  // iommu_pgsize (facts 1.3) with paddr = iova: the largest page size no bigger than what
  // remains and than the iova's alignment; the run is cut at the next larger size's boundary
  // when at least one whole larger page lies beyond it.
  const uint64_t bitmap = geometry_.pgsizeBitmap;
  uint64_t candidates = bitmap & (remaining | (highestBit(remaining) - 1));
  if (iova != 0) candidates &= (iova & -iova) | ((iova & -iova) - 1);
  KJ_ASSERT(candidates != 0, "no page size fits", iova, remaining);
  const uint64_t pgsize = highestBit(candidates);
  uint64_t size = remaining;
  const uint64_t larger = bitmap & ~(pgsize | (pgsize - 1));
  if (larger != 0) {
    const uint64_t next = larger & -larger;
    const uint64_t offset = next - (iova & (next - 1));
    if (offset + next <= remaining) size = offset;
  }
  count = size / pgsize;
  return pgsize;
}

uint64_t IoPageTable::unmapPages(uint64_t iova, uint64_t pgsize, uint64_t count,
                                 UnmapResult& result, Errno& error) {
  // arm_lpae_unmap_pages / __arm_lpae_unmap (facts 1.1): walk down to the level whose block is
  // `pgsize`, clear up to `count` entries there (no further than the end of that granule-sized
  // table, arm_lpae_max_entries), each table entry among them flushed as a walk and its
  // subtree freed; then one add_page per processed entry. Returns the bytes unmapped; 0 with
  // `error` set when nothing was (a hole, a refused partial leaf, no table for a split).
  const Geometry& g = geometry_;
  auto& list = result.invalidations;
  uint32_t level = g.startLevel;
  PhysAddr table = root_;
  uint64_t splitGranule = 0;
  for (;;) {
    uint64_t* entries = entriesOf(table, level);
    uint64_t idx = g.index(iova, level);
    uint64_t* ptep = entries + idx;
    uint64_t pte = loadPte(ptep);
    if (level == MAX_LEVELS - 1) stats_.unmapLastLevelReads++;
    if (pte == 0) {
      error = Errno::NOENT;  // WARN_ON(!pte): nothing unmapped
      return 0;
    }
    const uint64_t block = g.blockSize(level);
    if (block == pgsize) {
      const uint64_t perTable = g.pageSize() / 8;
      const uint64_t n = kj::min(count, perTable - idx % perTable);
      uint64_t processed = 0;
      for (; processed < n; processed++) {
        uint64_t* p = ptep + processed;
        uint64_t e = processed == 0 ? pte : loadPte(p);
        if (processed != 0 && level == MAX_LEVELS - 1) stats_.unmapLastLevelReads++;
        if (e == 0) break;  // WARN_ON(!pte): stop at the hole
        if (isTable(e, level)) {
          writePte(p, 0);
          list.add(Invalidation{iova + processed * pgsize, pgsize, g.pageSize(), false});
          freePgtable(tableAddress(e), level + 1);
        }
      }
      for (uint64_t i = 0; i < processed; i++) {
        if (loadPte(ptep + i) != 0) writePte(ptep + i, 0);  // __arm_lpae_clear_pte
      }
      if (processed > 0) {
        addInvalidation(list, Invalidation{iova, processed * pgsize,
                                           kj::max(pgsize, splitGranule), true});
      }
      if (processed < n || processed == 0) error = Errno::NOENT;
      return processed * pgsize;
    }
    if (isTable(pte, level)) {
      table = tableAddress(pte);
      level++;
      continue;
    }
    // A leaf larger than pgsize (facts 1.5).
    switch (config_.partialUnmap) {
      case PartialUnmap::REFUSE:
        error = Errno::INVAL;  // "Unmap of a partial large IOPTE is not allowed"
        return 0;
      case PartialUnmap::WHOLE_LEAF: {
        const uint64_t base = alignDown(iova, block);
        writePte(ptep, 0);
        addInvalidation(list, Invalidation{base, block, block, true});
        return block;  // the caller counts the whole leaf and moves past it
      }
      case PartialUnmap::SPLIT: {
        // arm_lpae_split_blk_unmap: the block becomes a full table of next-level leaves, and
        // the unmap continues inside it (splitting again if pgsize is smaller still).
        const uint32_t child = level + 1;
        KJ_ASSERT(child < MAX_LEVELS && g.leafAllowed(child));
        KJ_IF_MAYBE(t, allocTable(false)) {
          fillLeaves(*t, child, leafAttributesOf(pte), decodeOutputAddress(pte, g.granule));
          writePte(ptep, makeTablePte(*t));
          if (splitGranule == 0) splitGranule = block;
          table = *t;
          level = child;
          continue;
        }
        error = Errno::NOMEM;
        return 0;
      }
    }
    KJ_UNREACHABLE;
  }
}

Errno IoPageTable::unmapLinux(const UnmapRange& range, UnmapResult& result) {
  // __iommu_unmap (facts 1.3): iommu_pgsize, then unmap_pages, until the range is done or the
  // driver unmaps nothing.
  uint64_t iova = range.iova, done = 0;
  while (done < range.size) {
    uint64_t count = 0;
    const uint64_t pgsize = iommuPgsize(iova, range.size - done, count);
    Errno error = Errno::OK;
    const uint64_t bytes = unmapPages(iova, pgsize, count, result, error);
    if (bytes > pgsize * count) {
      // WHOLE_LEAF: a leaf reaching before iova or past the run went whole.
      result.bytesUnmapped += bytes;
      const uint64_t end = alignDown(iova, bytes) + bytes;
      done += kj::min(end - iova, range.size - done);
      iova = end;
    } else {
      result.bytesUnmapped += bytes;
      done += bytes;
      iova += bytes;
    }
    if (error != Errno::OK) return error;
    if (bytes == 0) return Errno::NOENT;
  }
  return Errno::OK;
}

UnmapResult IoPageTable::unmap(kj::ArrayPtr<const UnmapRange> ranges) {
  UnmapResult result;
  unmap(ranges, result);
  return result;
}

void IoPageTable::unmap(kj::ArrayPtr<const UnmapRange> ranges, UnmapResult& result) {
  result.bytesUnmapped = 0;
  result.invalidations.clear();
  result.stoppedIndex = nullptr;
  result.error = Errno::OK;
  const Geometry& g = geometry_;
  for (size_t i = 0; i < ranges.size(); i++) {
    const UnmapRange& range = ranges[i];
    Errno error = Errno::OK;
    if (range.size == 0 || !isAligned(range.iova | range.size, g.pageSize())) {
      error = Errno::INVAL;
    } else if (range.size > g.inputLimit() || range.iova > g.inputLimit() - range.size) {
      error = Errno::RANGE;
    } else if (range.size == g.pageSize() && config_.lifetime == TableLifetime::LINUX &&
               unmapPageFast(range, uint32_t(i), result)) {
      // done: one page leaf cleared
    } else {
      // Each range's invalidations on their own, then tagged with its index: entries of two
      // ranges are never merged (each range is one iommu_unmap, with its own final sync).
      UnmapResult one;
      one.invalidations = kj::mv(rangeScratch_);
      one.invalidations.clear();
      if (config_.lifetime == TableLifetime::LINUX) {
        error = unmapLinux(range, one);
      } else {
        UnmapVisitor v(*this, one.invalidations);
        walkTable(g.startLevel, root_, range.iova, range.iova + range.size, v);
        one.bytesUnmapped = v.unmapped;
        error = v.error;
      }
      result.bytesUnmapped += one.bytesUnmapped;
      for (auto& inv : one.invalidations) inv.range = uint32_t(i);
      if (result.invalidations.size() == 0 && result.invalidations.capacity() == 0) {
        result.invalidations = kj::mv(one.invalidations);   // no second list to allocate
      } else {
        for (auto& inv : one.invalidations) result.invalidations.add(inv);
        rangeScratch_ = kj::mv(one.invalidations);
      }
    }
    if (error != Errno::OK) {
      result.error = error;
      result.stoppedIndex = i;
      break;
    }
  }
}

bool IoPageTable::unmapPageFast(const UnmapRange& range, uint32_t index, UnmapResult& result) {
  // One page under TableLifetime::LINUX (iommu_pgsize gives (4K-granule page, 1)) whose tables
  // all exist and whose last-level entry is a page: exactly what unmapPages does there (clear
  // it, one leaf invalidation; no table is freed), as a loop. Anything else (a hole, a block
  // above) returns false for the general path, having changed nothing.
  uint64_t* entries = fast_.root;
  for (uint32_t level = geometry_.startLevel; level < MAX_LEVELS - 1; level++) {
    const uint64_t pte = loadPte(entries + fastIndex(range.iova, level));
    if (!isTable(pte, level)) return false;
    entries = tableAt(tableAddress(pte));
  }
  constexpr uint32_t LAST = MAX_LEVELS - 1;
  uint64_t* ptep = entries + fastIndex(range.iova, LAST);
  stats_.unmapLastLevelReads++;
  if (!isLeaf(loadPte(ptep), LAST)) {
    stats_.unmapLastLevelReads--;  // the general path reads it again and counts it
    return false;
  }
  writePte(ptep, 0);
  result.bytesUnmapped += range.size;
  result.invalidations.add(Invalidation{range.iova, range.size, range.size, true, index});
  return true;
}

kj::Maybe<uint64_t> IoPageTable::iovaToPhys(uint64_t iova) const {
  // A loop, not a visitor: one descriptor per level (the per-call cost of a single lookup was
  // the visitor walk's bookkeeping, not its four loads).
  if (iova >= geometry_.inputLimit()) return nullptr;
  const uint64_t* entries = fast_.root;
  for (uint32_t level = geometry_.startLevel;; level++) {
    const uint64_t pte = loadPte(entries + fastIndex(iova, level));
    if (isTable(pte, level)) {
      entries = tableAt(tableAddress(pte));
      continue;
    }
    if (!isLeaf(pte, level)) return nullptr;
    // Facts 4.8: leaf PA | (iova & (block_size - 1)).
    return decodeOutputAddress(pte, geometry_.granule) +
           (iova & ((uint64_t(1) << fast_.shift[level]) - 1));
  }
}

kj::Vector<WalkStep> IoPageTable::walk(uint64_t iova) const {
  kj::Vector<WalkStep> steps;
  if (iova >= geometry_.inputLimit()) return steps;
  WalkVisitor v{steps};
  walkTable(geometry_.startLevel, root_, iova, iova + 1, v);
  return steps;
}

kj::OneOf<DirtyBitmap, Errno> IoPageTable::readAndClearDirty(uint64_t iova, uint64_t size,
                                                             bool noClear) {
  const Geometry& g = geometry_;
  // Only ARM_64_LPAE_S1 tracks dirt, and only with HD (facts 4.9).
  if (config_.format != Format::STAGE1 || !config_.hd) return Errno::INVAL;
  if (size == 0 || !isAligned(iova | size, g.pageSize())) return Errno::INVAL;
  if (size > g.inputLimit() || iova > g.inputLimit() - size) return Errno::INVAL;
  DirtyBitmap bitmap;
  bitmap.iova = iova;
  bitmap.pageSize = g.pageSize();
  bitmap.pages = size / g.pageSize();
  bitmap.words = kj::heapArray<uint64_t>((bitmap.pages + 63) / 64);
  for (auto& w : bitmap.words) w = 0;
  DirtyVisitor v{*this, bitmap, noClear};
  walkTable(g.startLevel, root_, iova, iova + size, v);
  return kj::mv(bitmap);
}

S1Config IoPageTable::s1Config() const { return makeS1Config(geometry_, root_); }
S2Config IoPageTable::s2Config() const { return makeS2Config(geometry_, root_); }

}  // namespace nb::pt
