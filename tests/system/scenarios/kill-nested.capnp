# Reliability: a component's process is killed while a guest's device does DMA through both
# stages (system/manifests/nested.toml with every component process-placed, `--define
# victim=<instance>`). After the kill, each step either does what it would have done had nothing
# died, or fails naming the dead component: a memslot deletion whose stage-2 unmap or
# invalidation cannot be done fails rather than leave the device reaching the old memory
# (reliability-test.c++ holds, per victim, which).
@0xa8d4e2c6f1b39057;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "kill ${victim} under nested DMA",
  steps = [
    (shadow = (vm = "vm0", target = (smmu = "smmu0")), saveAs = "shadow"),
    (call = (target = "$shadow", method = "domain", result = "domain"), saveAs = "s2"),
    (allocViommu = (s2Domain = "$s2"), saveAs = "v"),
    (addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x100)),
    (claimDevice = (device = "01:00.0"), saveAs = "o"),
    (guestAttach = (viommu = "$v", ownership = "$o", region = (gpa = 0x2000000), asid = 3,
                    vsid = 0x42)),
    (guestMap = (iova = 0x10000000, gpa = 0x1000000, size = 0x2000)),
    (guestMap = (iova = 0x20000000, gpa = 0x10000000, size = 0x1000)),
    (dma = (endpoint = "ep0", iova = 0x20000010, write = true, data = "slot one")),

    (label = "kill", kill = (instance = "${victim}")),

    (label = "DMA through both stages",
     dma = (endpoint = "ep0", iova = 0x20000010, length = 8), expect = (value = "\"slot one\"")),
    (label = "the guest unmaps a page and invalidates",
     guestUnmap = (iova = 0x10000000, size = 0x1000),
     expect = (fields = [(path = "bytes", equals = "0x1000")])),
    (label = "DMA to the guest-unmapped page faults at stage 1",
     dma = (endpoint = "ep0", iova = 0x10000000, length = 4),
     expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "false")]))),
    (label = "the VMM deletes slot 1", memslotDelete = (slot = 1)),
    (label = "DMA to the deleted slot faults at stage 2",
     dma = (endpoint = "ep0", iova = 0x20000010, length = 8),
     expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "true")]))),
  ],
);
