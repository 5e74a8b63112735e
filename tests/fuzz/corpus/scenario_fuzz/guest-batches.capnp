# The guest-batch study: one guest issuing TLBI_NH_VA batches of `batch` pages (a scenario
# parameter, default 64), `rounds` times (default 32), through the manifest's guest path. Run it on
# guest-native.toml, guest-generic.toml or guest-sw-vcmdq.toml, or sweep the batch size:
#   nestbed sweep system/manifests/guest-native.toml system/scenarios/guest-batches.capnp \
#     --param scenario.batch=1,8,64,512 \
#     --series components.smmu_queue.guest_path=native,sw_vcmdq --plot guest-batches.svg
# The batch step's time per iteration is one guest batch, issue to completion (its SYNC).
# Memory: 0x40000000 + 256 MiB; guest RAM is 2 MiB of it at GPA 0x8000_0000.
@0xd1b7e64a2c0f9835;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "smmu_queue: guest invalidation batches of ${batch:-64} pages",
  steps = [
    (label = "guest RAM: 2 MiB of host memory",
     call = (target = "memory", method = "alloc", args = "(bytes = 0x200000, align = 0x200000)",
             result = "runs.0.pa"),
     saveAs = "ram"),
    (label = "a nest-parent stage 2 finalised for smmu0",
     call = (target = "domains", method = "allocPaging",
             args = "(target = (smmu = \"smmu0\"), flags = (nestParent = true))", result = "domain"),
     saveAs = "s2"),
    (call = (target = "$s2", method = "map",
             args = "(runs = [(iova = 0x80000000, pa = $ram, size = 0x200000, prot = (read = true, write = true, cache = true))])")),
    (allocViommu = (s2Domain = "$s2"), saveAs = "v"),
    (addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x100)),
    (label = "the guest's queue (a VCMDQ ring at the start of guest RAM on sw_vcmdq)",
     guestInvalidate = (viommu = "$v", commands = [], ring = (gpa = 0x80000000, log2Entries = 10, s2Domain = "$s2"))),
    (label = "guest batches",
     repeat = (count = ${rounds:-32}, steps = [
       (label = "one guest batch of TLBI_NH_VA",
        guestInvalidate = (viommu = "$v", runs = [
          (dw0 = 0x0001000000000012, dw1 = 0x10000001, count = ${batch:-64}, dw1Stride = 0x1000)]),
        expect = (fields = [(path = "entryNum", equals = "${batch:-64}")]))])),
    (check = void,
     expect = (counters = [
       (instance = "smmu_queue", counter = "guest_refused", equals = 0),
       (instance = "smmu_queue", counter = "illegal", equals = 0)])),
  ],
);
