@0xa6c1f3e29b8d4c03;
# Physical memory services (hw/mem). The bytes themselves never cross RPC: every process maps
# the same memfd. What crosses is ownership of frames.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";

struct FrameRun {
  pa @0 :UInt64;      # physical address, 4 KiB aligned
  bytes @1 :UInt64;   # length, a multiple of 4 KiB
}

interface FrameAllocator {
  alloc @0 (bytes :UInt64 = 4096, align :UInt64 = 4096, count :UInt32 = 1, below :UInt64 = 0)
      -> (errno :Common.Errno, runs :List(FrameRun));
  # `count` runs of `bytes` each, aligned to `align` (a power of two >= 4096). All or nothing:
  # `eNoMem` (and no runs) when memory is exhausted; `eInval` for a bad size or alignment.
  # `below` (0: anywhere) bounds where: every run ends at or below it (e.g. 2^OAS for tables a
  # walker must reach); `eNoMem` when there are not enough such runs.

  free @1 (runs :List(FrameRun)) -> (errno :Common.Errno);
  # Returns runs. Freeing frames that are not allocated is `eInval` and frees nothing.

  info @2 () -> (base :UInt64, size :UInt64, usedBytes :UInt64);

  reserve @3 (runs :List(FrameRun)) -> (errno :Common.Errno);
  # Claims runs at fixed addresses (memory a manifest places, e.g. a VM's guest RAM at a given
  # `pa`); they are returned with `free`. All or nothing: `eBusy` if any frame is in use (or
  # two runs overlap), `eInval` for a run that is empty, misaligned or outside memory.
}
