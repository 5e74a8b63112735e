# On system/manifests/default.toml: ep0 (SID 0x300) attached to a stage-1 domain mapping IOVA
# 0x10000000 to a buffer; with --dump-memory, `nestbed decode walk` finds the buffer's PA.
@0xe3a5c7e9f1b20846;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (claimDevice = (device = "03:00.0", owner = 1), saveAs = "owner"),
    (allocPaging = (target = (device = "03:00.0")), saveAs = "dom"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x4000)", result = "runs.0.pa"),
     saveAs = "buf", record = "buffer"),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x4000, prot = (read = true, write = true, cache = true))])"),
     expect = (fields = [(path = "bytesMapped", equals = "0x4000")])),
    (attach = (ownership = "$owner", domain = "$dom")),
    (call = (target = "$dom", method = "info", result = "info.asid"), record = "asid"),
  ],
);
