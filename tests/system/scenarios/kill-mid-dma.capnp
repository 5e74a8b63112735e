# Reliability: a component's process is killed while a device does DMA through a domain it
# helped set up (system/manifests/default-process.toml, `--define victim=<instance>`). After the
# kill, each step either does what it would have done had nothing died, or fails naming the
# dead component (reliability-test.c++ holds, per victim, which).
@0xc3f1a9e7d5b24068;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "kill ${victim} mid-DMA",
  steps = [
    (claimDevice = (device = "03:00.0", owner = 1), saveAs = "owner"),
    (allocPaging = (target = (device = "03:00.0")), saveAs = "dom"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x2000)", result = "runs.0.pa"),
     saveAs = "buf"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x1000)", result = "runs.0.pa"),
     saveAs = "buf2"),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x2000, prot = (read = true, write = true, cache = true))])"),
     expect = (fields = [(path = "bytesMapped", equals = "0x2000")])),
    (attach = (ownership = "$owner", domain = "$dom")),
    (dma = (endpoint = "ep0", iova = 0x10000000, write = true, data = "before")),

    (label = "kill", kill = (instance = "${victim}")),

    (label = "DMA through the existing mapping",
     dma = (endpoint = "ep0", iova = 0x10000000, length = 6), expect = (value = "\"before\"")),
    (label = "map a new page",
     call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10002000, pa = $buf2, size = 0x1000, prot = (read = true, write = true, cache = true))])"),
     expect = (fields = [(path = "bytesMapped", equals = "0x1000")])),
    (label = "DMA to the new page",
     dma = (endpoint = "ep0", iova = 0x10002000, write = true, data = "after")),
    (label = "unmap the first pages",
     call = (target = "$dom", method = "unmap", args = "(ranges = [(iova = 0x10000000, size = 0x2000)])"),
     expect = (fields = [(path = "bytesUnmapped", equals = "0x2000")])),
    (label = "DMA to an unmapped page faults",
     dma = (endpoint = "ep0", iova = 0x10000000, length = 4),
     expect = (fault = (type = "fTranslation"))),
    (label = "a second owner cannot claim the held device (ePerm, as iommu_device_claim_dma_owner)",
     claimDevice = (device = "03:00.0", owner = 2), expect = (outcome = (errno = ePerm))),
    (label = "a new page table",
     call = (target = "page_table", method = "create", result = "table",
             args = "(config = (format = stage1, granule = size4k, ias = 48, oas = 48))")),
    (label = "release", release = (ownership = "$owner")),
    (label = "a counter check on the group manager",
     check = void, expect = (counters = [(instance = "groups", counter = "claims", atLeast = 1)])),
  ],
);
