# Runs on system/manifests/nic-lazy.toml with copy_4k set to 20 ms (the modeled-time test does):
# one 4 KiB DMA then takes longer than the flush queue's 10 ms timer, whose firing the next map
# notices: after it, a DMA to the unmapped IOVA faults without any drain step.
@0xa12f8d4d52c4d17c;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "modeled time: the flush queue's timer fires after 10 ms of modeled time",
  steps = [
    (claimDevice = (device = "01:00.0", owner = 1), saveAs = "owner"),
    (allocPaging = (target = (device = "01:00.0")), saveAs = "dom"),
    (attach = (ownership = "$owner", domain = "$dom")),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x2000, align = 0x200000)",
             result = "runs.0.pa"),
     saveAs = "buf"),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x1000, prot = (read = true, write = true))])")),
    (label = "a DMA puts the translation in the IOTLB",
     call = (target = "ep0", method = "dma", args = "(iova = 0x10000000, length = 4)")),
    (label = "lazy unmap: queued, not flushed",
     call = (target = "$dom", method = "unmap", args = "(ranges = [(iova = 0x10000000, size = 0x1000)])"),
     expect = (fields = [(path = "syncs", equals = "0")])),
    (label = "inside the window the stale translation still works",
     call = (target = "ep0", method = "dma", args = "(iova = 0x10000000, length = 4)"),
     expect = (fields = [(path = "bytes", equals = "4")])),
    (label = "another 4 KiB DMA through the stale entry: 20 ms of modeled time",
     call = (target = "ep0", method = "dma", args = "(iova = 0x10000000, length = 4096)")),
    (label = "the next map notices the timer has fired: one whole-ASID flush first",
     call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x20000000, pa = $buf, size = 0x1000, prot = (read = true, write = true))])"),
     expect = (counters = [(instance = "domains", counter = "fq_timeout_flushes", equals = 1),
                           (instance = "domains", counter = "fq_pending", equals = 0)])),
    (label = "after the timer, the unmapped IOVA faults",
     call = (target = "ep0", method = "dma", args = "(iova = 0x10000000, length = 4)"),
     expect = (fault = (type = "fTranslation"))),
    (call = (target = "smmu_queue", method = "drainEvents")),
  ]
);
