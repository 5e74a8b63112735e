@0xb189d6d1b92ae352;
# A DMA-capable PCIe function (hw/endpoint): it reads and writes shared physical memory through
# the SMMU its PCI topology puts it behind.
#
# Design stance: a DMA is what a device would do — split at 4 KiB page boundaries, every page
# translated by the SMMU (one batched call), then the bytes moved in shared memory. It is all
# or nothing: every page is translated before any byte moves, so a fault or an abort moves no
# byte. Faults are data (the event the SMMU raised); errno values are for malformed requests.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Smmu = import "/interfaces/smmuv3.capnp";
using Pci = import "/interfaces/pci.capnp";

struct DmaRequest {
  iova @0 :UInt64;         # first byte's I/O virtual address; any alignment
  length @1 :UInt64;       # bytes; writes: 0 means the length of `data`
  write @2 :Bool;          # false: read
  data @3 :Data;           # writes: the bytes, repeated as a pattern when shorter than `length`
  union {
    noSsid @4 :Void;       # no PASID (default)
    ssid @5 :UInt32;       # with this SubstreamID (PASID), below 2^20
  }
  priv @6 :Bool;           # privileged transactions
  exec @7 :Bool;           # instruction fetch (reads only)
}

enum DmaAbortCause {
  gbpa @0;            # the SMMU is disabled and GBPA.ABORT is set
  ste @1;             # the stream's STE aborts
  externalAbort @2;   # translated, but the physical address is outside memory
}

struct DmaResult {
  errno @0 :Common.Errno;
  # eInval: a malformed request (length 0 or above the endpoint's max_dma, an SSID of 2^20 or
  # more, a write without data); nothing was done. `ok` for every hardware outcome below.

  union {
    ok @1 :Void;                 # every byte moved
    fault @2 :Smmu.Fault;        # the SMMU raised this event for the first page that failed;
                                 # no byte moved
    aborted :group {             # terminated without an event; no byte moved
      cause @3 :DmaAbortCause;
      iova @4 :UInt64;           # the page's first byte that was refused
      pa @5 :UInt64;             # externalAbort: the physical address outside memory
    }
  }
  data @6 :Data;          # reads: the bytes read
  bytes @7 :UInt64;       # bytes moved
  transactions @8 :UInt32; # pages presented to the SMMU (up to and including a failing one)
}

interface Endpoint {
  dma @0 DmaRequest -> DmaResult;
  # Example: (iova = 0x10000, length = 8) reads; (iova = 0x10000, write = true, data = "abc")
  # writes; (iova = 0x10000, length = 4096, ssid = 3) reads with PASID 3.

  info @1 () -> (device :Pci.PciDevice);
  # The function this endpoint is, as the PCI topology exports it (BDF, StreamID, SMMU).
}
