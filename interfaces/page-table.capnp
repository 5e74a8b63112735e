@0xd8e3b1a6f4c29d09;
# The page_table component: VMSAv8-64 io page tables built in shared physical memory, byte for
# byte what an SMMUv3 walks (the io-pgtable of nestbed).
#
# Design stance: the tables themselves never cross RPC — only their configuration (the TTBR/TCR/
# MAIR a CD needs, the VTTBR/VTCR an STE needs), batches of runs, and the invalidations a change
# requires. Results mirror Linux io-pgtable-arm: errno values with Linux meanings.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";

enum Format {
  stage1 @0;   # ARM_64_LPAE_S1
  stage2 @1;   # ARM_64_LPAE_S2
}

enum Granule {
  size4k @0;
  size16k @1;
  size64k @2;
}

struct Prot {
  # Linux IOMMU_* prot flags.
  read @0 :Bool;
  write @1 :Bool;
  cache @2 :Bool;    # normal write-back memory, inner shareable
  noexec @3 :Bool;   # XN
  mmio @4 :Bool;     # Device-nGnRE
  priv @5 :Bool;     # privileged only (stage 1)
}

struct TableConfig {
  format @0 :Format;
  granule @1 :Granule;
  ias @2 :UInt8 = 48;          # input address bits: 32, 36, 40, 42, 44, 48, 52 (52: 64K only)
  oas @3 :UInt8 = 48;          # output address bits, same set
  dirtyTracking @4 :Bool;      # IO_PGTABLE_QUIRK_ARM_HD: DBM on writable leaves (stage 1)
}

struct MapRun {
  iova @0 :UInt64;   # granule aligned
  pa @1 :UInt64;     # granule aligned
  size @2 :UInt64;   # bytes, a non-zero multiple of the granule
  prot @3 :Prot;
}

struct Range {
  iova @0 :UInt64;
  size @1 :UInt64;
}

struct Invalidation {
  # One TLB invalidation the caller must issue (Linux tlb_add_page / flush_walk). With the
  # `linux` table lifetime the list is io-pgtable-arm's callback sequence in order, so that a
  # caller can replay iommu_iotlb_gather_add_page: a walk entry is one tlb_flush_walk (one per
  # freed table entry); a leaf entry is a run of tlb_add_page(iova + k * granule, granule)
  # calls, merged only where the gather would merge them (same granule, contiguous).
  iova @0 :UInt64;
  size @1 :UInt64;
  granule @2 :UInt64;   # leaf size cached (leaf) or the translation granule (walk)
  leaf @3 :Bool;        # true: leaf entries only; false: walk caches too (tables were freed)
  range @4 :UInt32;     # unmap: index of the range it belongs to (one iommu_unmap each)
}

struct Tcr {
  ips @0 :UInt8;
  tg @1 :UInt8;
  sh @2 :UInt8;
  orgn @3 :UInt8;
  irgn @4 :UInt8;
  tsz @5 :UInt8;
}

struct Vtcr {
  ps @0 :UInt8;
  tg @1 :UInt8;
  sh @2 :UInt8;
  orgn @3 :UInt8;
  irgn @4 :UInt8;
  sl @5 :UInt8;      # SL0 encoding
  tsz @6 :UInt8;
}

struct TableInfo {
  rootPa @0 :UInt64;          # PGD (first of any concatenated tables)
  config @1 :TableConfig;
  startLevel @2 :UInt8;
  levels @3 :UInt8;
  concatenated @4 :UInt8;     # tables concatenated at the start level (1 = none)
  pgdBytes @5 :UInt64;
  pgsizeBitmap @6 :UInt64;    # leaf sizes the table can hold
  tablePages @7 :UInt64;      # table pages in use, the PGD counting as one
  union {
    s1 @8 :S1Config;          # what a CD needs
    s2 @9 :S2Config;          # what an STE needs
  }

  struct S1Config {
    ttbr @0 :UInt64;
    tcr @1 :Tcr;
    mair @2 :UInt64;
  }

  struct S2Config {
    vttbr @0 :UInt64;
    vtcr @1 :Vtcr;
  }
}

struct WalkStep {
  level @0 :UInt8;
  descriptorPa @1 :UInt64;
  descriptor @2 :UInt64;
}

interface PageTableEngine {
  # The component's main capability: makes tables. Settings (manifest): partial_unmap,
  # table_lifetime.

  create @0 (config :TableConfig) -> (errno :Common.Errno, table :PageTable, info :TableInfo);
  # eInval for an illegal geometry; eOpNotSupp for dirty tracking on stage 2; eNoMem.
}

interface PageTable {
  map @0 (runs :List(MapRun)) -> (errno :Common.Errno, bytesMapped :UInt64,
                                  failedIndex :Int64 = -1, invalidations :List(Invalidation));
  # Maps the runs in order, each split into the largest aligned blocks the table allows
  # (io-pgtable-arm map_pages). Stops at the first failure: eExist over an existing leaf, eRange
  # beyond IAS/OAS, eInval for no read and no write or a misaligned run, eNoMem; everything
  # before it stays mapped and `bytesMapped` says exactly how far it got.

  unmap @1 (ranges :List(Range)) -> (errno :Common.Errno, bytesUnmapped :UInt64,
                                     stoppedIndex :Int64 = -1, invalidations :List(Invalidation));
  # Unmaps the ranges in order (iommu_unmap: iommu_pgsize, then unmap_pages) and returns what
  # must be invalidated. A range covering part of a larger leaf follows the component's
  # `partial_unmap` setting; which tables are freed, its `table_lifetime` setting.

  iovaToPhys @2 (iova :UInt64) -> (errno :Common.Errno, pa :UInt64);
  # eNoEnt when nothing is mapped there.

  walk @3 (iova :UInt64) -> (steps :List(WalkStep));
  # The descriptors a hardware walk reads, down to the leaf or the first invalid one.

  readAndClearDirty @4 (iova :UInt64, size :UInt64, noClear :Bool)
      -> (errno :Common.Errno, pageSize :UInt64, dirtyPages :UInt64, bitmap :List(UInt64));
  # Stage 1 with dirty tracking only. One bit per page, LSB first (the iommufd layout).

  info @5 () -> (info :TableInfo);

  destroy @6 () -> ();
  # Frees every table page. Later calls fail.
}
