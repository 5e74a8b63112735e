# The strict vs lazy study: a NIC driver's receive ring on ep0 — for each of `ring` slots
# (default 64), map a buffer of `buffer` bytes (default 4096) at the slot's IOVA, let the
# device DMA a packet into it, unmap it — `rounds` times (default 8): 512 map/DMA/unmap by
# default. Every slot maps the same physical buffer (the study counts invalidations, not data).
# Run it on nic-strict.toml and nic-lazy.toml (one line apart):
#   nestbed compare system/manifests/nic-strict.toml system/manifests/nic-lazy.toml \
#     system/scenarios/nic-ring.capnp
# or sweep the buffer size: --define buffer=0x200000 makes each unmap free a level-3 table, whose
# walk flush is synchronous on both sides. The last steps show the lazy window: a DMA to the
# packet's IOVA after its unmap (smmu0.faults: strict faults, lazy still hits the IOTLB), the
# flush queue drained (what Linux's 10 ms timer does), the same DMA again (faults on both).
# Memory: 0x40000000 + 64 MiB.
@0xa3c6f1e8b2d40957;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "strict vs lazy: a ring of ${ring:-64} buffers of ${buffer:-4096} bytes",
  steps = [
    (label = "the driver claims the NIC: its group moves onto the blocking domain",
     claimDevice = (device = "01:00.0", owner = 1), saveAs = "owner"),
    (label = "its DMA domain, strict or lazy by the manifest's default_domain_type",
     allocPaging = (target = (device = "01:00.0")), saveAs = "dom"),
    (attach = (ownership = "$owner", domain = "$dom")),
    (call = (target = "memory", method = "alloc",
             args = "(bytes = ${buffer:-4096}, align = 0x200000)", result = "runs.0.pa"),
     saveAs = "buf"),
    (label = "rounds of the ring",
     repeat = (count = ${rounds:-8}, counter = "r", steps = [
       (label = "one slot: map, DMA, unmap",
        repeat = (count = ${ring:-64}, counter = "k", start = 0x10000000, stride = ${buffer:-4096},
                  steps = [
          (label = "map the slot's buffer",
           call = (target = "$dom", method = "map",
                   args = "(runs = [(iova = $k, pa = $buf, size = ${buffer:-4096}, prot = (read = true, write = true, cache = true))])"),
           expect = (fields = [(path = "bytesMapped", equals = "${buffer:-4096}")])),
          (label = "the NIC writes a packet into it",
           call = (target = "ep0", method = "dma", args = "(iova = $k, write = true, data = \"packet\")")),
          (label = "unmap the slot",
           call = (target = "$dom", method = "unmap",
                   args = "(ranges = [(iova = $k, size = ${buffer:-4096})])"),
           expect = (fields = [(path = "bytesUnmapped", equals = "${buffer:-4096}")])),
        ]))])),
    (label = "the lazy window: one more packet at IOVA 0x2000_0000, then a DMA after its unmap",
     call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x20000000, pa = $buf, size = 0x1000, prot = (read = true, write = true, cache = true))])")),
    (call = (target = "ep0", method = "dma", args = "(iova = 0x20000000, write = true, data = \"packet\")")),
    (call = (target = "$dom", method = "unmap", args = "(ranges = [(iova = 0x20000000, size = 0x1000)])")),
    (label = "DMA after unmap: strict faults (smmu0.faults), lazy still hits the stale IOTLB entry",
     call = (target = "ep0", method = "dma", args = "(iova = 0x20000000, length = 6)"),
     expect = (outcome = (any = void))),
    (label = "the fault's event read and routed before going on (same counters in every placement)",
     call = (target = "smmu_queue", method = "drainEvents")),
    (label = "the flush queue drains now (its 10 ms modeled-time timer would, at the next map or unmap)",
     call = (target = "$dom", method = "drainFlushQueue")),
    (label = "the same DMA after the drain faults on both",
     call = (target = "ep0", method = "dma", args = "(iova = 0x20000000, length = 6)"),
     expect = (fault = (type = "fTranslation"))),
    (call = (target = "smmu_queue", method = "drainEvents")),
    (check = void,
     expect = (counters = [(instance = "smmu_queue", counter = "illegal", equals = 0)])),
  ],
);
