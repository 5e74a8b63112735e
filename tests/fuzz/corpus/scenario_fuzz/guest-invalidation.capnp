# The shared guest workload of the three guest-path manifests (guest-native.toml,
# guest-generic.toml, guest-sw-vcmdq.toml): a vIOMMU over a nest-parent stage 2 of smmu0, one
# vDEVICE, and guest invalidation batches — accepted ones, partial success (entry_num), refused
# commands — issued as a guest driver would on whichever path the manifest selects. Every
# expectation holds on all three paths; their stats differ where the designs differ (doorbells,
# generic descriptors, lost precision).
# Memory: 0x40000000 + 256 MiB; guest RAM is 2 MiB of it at GPA 0x8000_0000.
@0xc4a0e3f5d79b1268;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "smmu_queue: one guest's invalidations through the manifest's guest path",
  steps = [
    (label = "guest RAM: 2 MiB of host memory",
     call = (target = "memory", method = "alloc", args = "(bytes = 0x200000, align = 0x200000)",
             result = "runs.0.pa"),
     saveAs = "ram"),
    (label = "a nest-parent stage 2 finalised for smmu0",
     call = (target = "domains", method = "allocPaging",
             args = "(target = (smmu = \"smmu0\"), flags = (nestParent = true))", result = "domain"),
     saveAs = "s2"),
    (label = "guest RAM at GPA 0x8000_0000",
     call = (target = "$s2", method = "map",
             args = "(runs = [(iova = 0x80000000, pa = $ram, size = 0x200000, prot = (read = true, write = true, cache = true))])")),
    (label = "the vIOMMU over it takes the domain's VMID",
     allocViommu = (s2Domain = "$s2"), saveAs = "v"),
    (label = "a stage-1 domain is no vIOMMU parent",
     call = (target = "domains", method = "allocPaging", args = "(target = (smmu = \"smmu0\"))",
             result = "domain"),
     saveAs = "s1"),
    (allocViommu = (s2Domain = "$s1"), expect = (outcome = (errno = eInval))),
    (label = "vDEVICE: the guest's vSID 0x42 is ep0 (StreamID 0x100)",
     addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x100)),
    (addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x101), expect = (outcome = (errno = eExist))),
    (addVdevice = (viommu = "$v", vsid = 0x43, sid = 0x100), expect = (outcome = (errno = eExist))),

    (label = "an empty batch probes support (and places a VCMDQ ring at the start of guest RAM)",
     guestInvalidate = (viommu = "$v", commands = [], ring = (gpa = 0x80000000, s2Domain = "$s2")),
     expect = (fields = [(path = "entryNum", equals = "0")])),
    (label = "a batch: 8 pages of ASID 1, all of ASID 2, ep0's ATC",
     guestInvalidate = (viommu = "$v", commands = [
       (tlbiNhVa = (asid = 1, addr = 0x10000000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10001000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10002000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10003000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10004000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10005000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10006000, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10007000, leaf = true)),
       (tlbiNhAsid = (asid = 2)),
       (atcInv = (sid = 0x42, size = 52))]),
     expect = (fields = [(path = "entryNum", equals = "10")])),
    (label = "a range with a TTL hint: 16 pages of ASID 1 at level 3 (NUM 15, TG 4K, TTL 3)",
     guestInvalidate = (viommu = "$v", commands = [
       (tlbiNhVa = (asid = 1, addr = 0x10000000, leaf = true, ttl = 3, tg = 1, num = 15))]),
     expect = (fields = [(path = "entryNum", equals = "1")])),
    (label = "TLBI_NSNH_ALL becomes TLBI_NH_ALL of the vIOMMU's VMID",
     guestInvalidate = (viommu = "$v", commands = [(tlbiNsnhAll = void)]),
     expect = (fields = [(path = "entryNum", equals = "1")])),
    (label = "the guest's context descriptors of vSID 0x42",
     guestInvalidate = (viommu = "$v", commands = [(cfgiCdAll = (sid = 0x42))]),
     expect = (fields = [(path = "entryNum", equals = "1")])),
    (label = "CFGI_STE is never a guest's: EIO after the first entry, the third never runs",
     guestInvalidate = (viommu = "$v", commands = [
       (tlbiNhVa = (asid = 1, addr = 0x10000000, leaf = true)),
       (cfgiSte = (sid = 0x42, leaf = true)),
       (tlbiNhVa = (asid = 1, addr = 0x10001000, leaf = true))]),
     expect = (outcome = (errno = eIo), fields = [(path = "entryNum", equals = "1")])),
    (label = "a vSID without a vDEVICE: EIO at entry 0",
     guestInvalidate = (viommu = "$v", commands = [(atcInv = (sid = 0x99, size = 52))]),
     expect = (outcome = (errno = eIo), fields = [(path = "entryNum", equals = "0")])),
    (label = "later batches are unaffected: 16 more",
     repeat = (count = 16, steps = [
       (guestInvalidate = (viommu = "$v", commands = [
          (tlbiNhVa = (asid = 1, addr = 0x10000000, leaf = true)),
          (tlbiNhVa = (asid = 1, addr = 0x10001000, leaf = true))]),
        expect = (fields = [(path = "entryNum", equals = "2")]))])),
    (label = "no fault happened: the vEVENTQ is empty",
     readEvents = (viommu = "$v"),
     expect = (fields = [(path = "records", equals = "[]")], counters = [
       (instance = "smmu_queue", counter = "viommus", equals = 1),
       (instance = "smmu_queue", counter = "viommus_refused", equals = 1),
       (instance = "smmu_queue", counter = "vdevices", equals = 1),
       (instance = "smmu_queue", counter = "guest_refused", equals = 2),
       (instance = "smmu_queue", counter = "illegal", equals = 0),
       (instance = "smmu_queue", counter = "timeouts", equals = 0)])),
  ],
);
