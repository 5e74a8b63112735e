# Runs on system/manifests/default.toml: strict unmaps of a stage-1 domain, for the calibration
# against published native figures (tests/system/modeled-time-test.c++): one 4 KiB page, and
# 1 MiB of 4 KiB pages (no RIL: one TLBI per page, as Linux without range invalidation).
@0xed207df1429bc4a4;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "modeled time: strict unmaps of 4 KiB and of 1 MiB of 4 KiB pages",
  steps = [
    (call = (target = "domains", method = "allocPaging", args = "(target = (smmu = \"smmu0\"))",
             result = "domain"),
     saveAs = "dom"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x100000, align = 0x100000)",
             result = "runs.0.pa"),
     saveAs = "buf"),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x1000, prot = (read = true, write = true))])")),
    (label = "unmap 4 KiB", call = (target = "$dom", method = "unmap",
                                    args = "(ranges = [(iova = 0x10000000, size = 0x1000)])")),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x100000, prot = (read = true, write = true))])")),
    (label = "unmap 1 MiB of 4 KiB pages", call = (target = "$dom", method = "unmap",
                                    args = "(ranges = [(iova = 0x10000000, size = 0x100000)])")),
  ]
);
