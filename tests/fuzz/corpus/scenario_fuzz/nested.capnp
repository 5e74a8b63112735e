# Nesting end to end on system/manifests/nested.toml: the hypervisor shadows vm0 at stage 2 and
# builds a vIOMMU over the shadow with ep0 as a vDEVICE; the guest driver owns stage 1 in its
# own memory and DMA with its IOVAs lands where its tables say; its unmap, invalidated through
# the vIOMMU's guest path, faults at stage 1 into its vEVENTQ with its vSID; the VMM deletes a
# memslot, the shadow unmaps it before it goes, and DMA there faults at stage 2 — the host's
# fault, not the guest's. Expectations hold for both shadow implementations and every guest path.
# Guest memory: RAM at GPA 0 (64 MiB), the guest's structures at GPA 0x200_0000, a buffer at
# 0x100_0000; slot 1 is 2 MiB at GPA 0x1000_0000.
@0xc1ec2f8c38073889;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "nesting: guest-owned stage 1 over a stage-2 shadow of the VM, end to end",
  steps = [
    # ---- the hypervisor's side
    (label = "shadow vm0 at stage 2 for smmu0",
     shadow = (vm = "vm0", target = (smmu = "smmu0")), saveAs = "shadow"),
    (label = "the shadow maps both memslots",
     call = (target = "$shadow", method = "info", result = "info"),
     expect = (fields = [(path = "info.runs", equals = "2"),
                         (path = "info.mappedBytes", equals = "0x4200000"),
                         (path = "info.following", equals = "true")])),
    (label = "its nest-parent stage-2 domain",
     call = (target = "$shadow", method = "domain", result = "domain"), saveAs = "s2"),
    (label = "the vIOMMU over it", allocViommu = (s2Domain = "$s2"), saveAs = "v"),
    (label = "vDEVICE: vSID 0x42 is ep0 (StreamID 0x100)",
     addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x100)),
    (label = "the VMM claims ep0", claimDevice = (device = "01:00.0"), saveAs = "o"),

    # ---- the guest's side
    (label = "the guest's tables and CD in its memory; its vSTE nested and attached",
     guestAttach = (viommu = "$v", ownership = "$o", region = (gpa = 0x2000000), asid = 3,
                    vsid = 0x42),
     expect = (fields = [(path = "cdTable", equals = "0x2000000")])),
    (label = "the guest maps a buffer in RAM ...",
     guestMap = (iova = 0x10000000, gpa = 0x1000000, size = 0x2000)),
    (label = "... and a page of slot 1",
     guestMap = (iova = 0x20000000, gpa = 0x10000000, size = 0x1000)),
    (label = "DMA with the guest's IOVA",
     dma = (endpoint = "ep0", iova = 0x10001008, write = true, data = "nested")),
    (label = "it landed in guest memory where the guest's stage 1 says",
     call = (target = "vm0", method = "read", args = "(gpa = 0x1001008, length = 6)",
             result = "data"),
     expect = (value = "\"nested\"")),
    (label = "and reads back through both stages",
     dma = (endpoint = "ep0", iova = 0x10001008, length = 6), expect = (value = "\"nested\"")),
    (dma = (endpoint = "ep0", iova = 0x20000010, length = 8)),

    # ---- a guest unmap faults at stage 1, into the guest's vEVENTQ
    (label = "the guest unmaps the buffer and invalidates through its path",
     guestUnmap = (iova = 0x10000000, size = 0x2000),
     expect = (fields = [(path = "bytes", equals = "0x2000")])),
    (label = "DMA there faults at stage 1",
     dma = (endpoint = "ep0", iova = 0x10001008, length = 6),
     expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "false"),
                                                         (path = "sid", equals = "0x100")]))),
    (label = "the guest sees it with its vSID",
     readEvents = (viommu = "$v"),
     expect = (fields = [(path = "records.0.fault.type", equals = "fTranslation"),
                         (path = "records.0.fault.sid", equals = "0x42"),
                         (path = "records.0.fault.inputAddr", equals = "0x10001008"),
                         (path = "records.0.fault.s2", equals = "false")])),

    # ---- a memslot deletion faults at stage 2, for the host
    (label = "the VMM deletes slot 1: unmapped and invalidated before it goes",
     memslotDelete = (slot = 1),
     expect = (counters = [(instance = "shadow", counter = "notices_before", equals = 1),
                           (instance = "shadow", counter = "notices_after", equals = 1),
                           (instance = "shadow", counter = "runs_unmapped", equals = 1),
                           (instance = "shadow", counter = "update_errors", equals = 0)])),
    (label = "DMA through the guest's intact stage-1 entry faults at stage 2",
     dma = (endpoint = "ep0", iova = 0x20000010, length = 8),
     expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "true")]))),
    (label = "the guest's vEVENTQ stays empty: the fault is the host's",
     readEvents = (viommu = "$v"),
     expect = (fields = [(path = "records", equals = "[]")],
               counters = [(instance = "smmu_queue", counter = "events_to_guests", equals = 1)])),
    (label = "the shadow now maps RAM only",
     call = (target = "$shadow", method = "info", result = "info"),
     expect = (fields = [(path = "info.runs", equals = "1"),
                         (path = "info.changes", equals = "1"),
                         (path = "info.errors", equals = "0")])),

    # ---- guest memory keeps working
    (label = "the guest maps its buffer again", guestMap = (iova = 0x10000000, gpa = 0x1000000, size = 0x1000)),
    (dma = (endpoint = "ep0", iova = 0x10000000, write = true, data = "again")),
    (call = (target = "vm0", method = "read", args = "(gpa = 0x1000000, length = 5)", result = "data"),
     expect = (value = "\"again\"")),
  ],
);
