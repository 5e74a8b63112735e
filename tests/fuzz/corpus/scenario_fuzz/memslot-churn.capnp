# The stage-2 shadow study (ARCHITECTURE.md debate 2) on system/manifests/nested.toml and
# nested-pinned-pfn.toml: vm0 shadowed at stage 2, the shadow's domain attached to ep0 itself
# (DMA addresses are GPAs), then 32 rounds of memslot churn on slot 1 — move away and back,
# delete and re-add, read-only and back — with DMA after every change: where the slot is, DMA
# lands; where it was, DMA faults at stage 2; while read-only, DMA writes fault. Every
# expectation holds for both designs; their counters say what each change cost (vm_calls,
# slots_read, record_lookups, domain_calls, leaf writes, TLBI commands).
@0xce5d2b16360b06e4;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "stage2_shadow: memslot churn with DMA after every change",
  steps = [
    (label = "shadow vm0", shadow = (vm = "vm0", target = (smmu = "smmu0")), saveAs = "shadow"),
    (call = (target = "$shadow", method = "domain", result = "domain"), saveAs = "s2"),
    (label = "the VMM claims ep0 and attaches the stage-2 domain itself",
     claimDevice = (device = "01:00.0"), saveAs = "o"),
    (attach = (ownership = "$o", domain = "$s2")),
    (label = "slot 1 is reachable at its GPA",
     dma = (endpoint = "ep0", iova = 0x10000000, write = true, data = "slot1")),
    (label = "churn",
     repeat = (count = 32, steps = [
       (memslotMove = (slot = 1, gpa = 0x20000000)),
       (label = "moved: the contents followed", dma = (endpoint = "ep0", iova = 0x20000000, length = 5),
        expect = (value = "\"slot1\"")),
       (label = "the old GPA faults at stage 2", dma = (endpoint = "ep0", iova = 0x10000000, length = 5),
        expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "true")]))),
       (memslotMove = (slot = 1, gpa = 0x10000000)),
       (dma = (endpoint = "ep0", iova = 0x10000000, length = 5), expect = (value = "\"slot1\"")),
       (memslotFlags = (slot = 1, readonly = true)),
       (label = "read-only: DMA may read ...", dma = (endpoint = "ep0", iova = 0x10000000, length = 5),
        expect = (value = "\"slot1\"")),
       (label = "... not write", dma = (endpoint = "ep0", iova = 0x10000000, write = true, data = "x"),
        expect = (fault = (type = "fPermission", fields = [(path = "s2", equals = "true")]))),
       (memslotFlags = (slot = 1, readonly = false)),
       (memslotDelete = (slot = 1)),
       (label = "deleted: DMA faults at stage 2", dma = (endpoint = "ep0", iova = 0x10000000, length = 5),
        expect = (fault = (type = "fTranslation", fields = [(path = "s2", equals = "true")]))),
       (label = "re-added (fresh, zeroed memory)",
        memslotAdd = (slot = 1, gpa = 0x10000000, size = 0x200000)),
       (dma = (endpoint = "ep0", iova = 0x10000000, write = true, data = "slot1")),
     ])),
    (label = "every change followed, nothing failed, RAM and slot 1 mapped",
     call = (target = "$shadow", method = "info", result = "info"),
     expect = (fields = [(path = "info.runs", equals = "2"),
                         (path = "info.changes", equals = "192"),
                         (path = "info.errors", equals = "0")],
               counters = [(instance = "shadow", counter = "notices_before", equals = 192),
                           (instance = "shadow", counter = "notices_after", equals = 192),
                           (instance = "shadow", counter = "update_errors", equals = 0),
                           (instance = "shadow", counter = "record_mismatches", equals = 0)])),
  ],
);
