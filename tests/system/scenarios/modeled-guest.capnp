# Runs on system/manifests/guest-native.toml (or guest-sw-vcmdq.toml): one guest TLB invalidation
# through the vIOMMU, for the calibration against published trap-and-emulate figures
# (tests/system/modeled-time-test.c++). Set-up as system/scenarios/guest-invalidation.capnp.
@0xc323c40ba460c4be;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "modeled time: one guest TLB invalidation",
  steps = [
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x200000, align = 0x200000)",
             result = "runs.0.pa"),
     saveAs = "ram"),
    (call = (target = "domains", method = "allocPaging",
             args = "(target = (smmu = \"smmu0\"), flags = (nestParent = true))", result = "domain"),
     saveAs = "s2"),
    (call = (target = "$s2", method = "map",
             args = "(runs = [(iova = 0x80000000, pa = $ram, size = 0x200000, prot = (read = true, write = true, cache = true))])")),
    (allocViommu = (s2Domain = "$s2"), saveAs = "v"),
    (addVdevice = (viommu = "$v", vsid = 0x42, sid = 0x100)),
    (label = "the guest path is set up (an empty batch)",
     guestInvalidate = (viommu = "$v", commands = [], ring = (gpa = 0x80000000, s2Domain = "$s2"))),
    (label = "one guest TLBI_NH_VA (one page of ASID 1)",
     guestInvalidate = (viommu = "$v", commands = [(dw0 = 0x0001000000000012, dw1 = 0x10000001)]),
     expect = (fields = [(path = "entryNum", equals = "1")])),
  ]
);
