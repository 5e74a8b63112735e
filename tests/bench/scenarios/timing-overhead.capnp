# Runs on system/manifests/default.toml, for //tests/bench:modeled_time: a bulk map of 4 KiB
# pages in one call and a loop of DMAs that hit the IOTLB, timed with modeled time on and off.
@0xd620fefc59caf263;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "what charging modeled time costs nestbed",
  steps = [
    (claimDevice = (device = "03:00.0", owner = 1), saveAs = "owner"),
    (allocPaging = (target = (device = "03:00.0")), saveAs = "dom"),
    (call = (target = "memory", method = "alloc", args = "(bytes = 0x4000)", result = "runs.0.pa"),
     saveAs = "buf"),
    (call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = $buf, size = 0x4000, prot = (read = true, write = true, cache = true))])")),
    (attach = (ownership = "$owner", domain = "$dom")),
    (label = "bulk map: 128 MiB of 4 KiB pages in one call",
     call = (target = "$dom", method = "map",
             args = "(runs = [(iova = 0x80001000, pa = 0x40002000, size = 0x8000000, prot = (read = true))])")),
    (label = "IOTLB-hit loop: 2000 DMAs of 4 bytes",
     repeat = (count = 2000, counter = "i", steps = [
       (dma = (endpoint = "ep0", iova = 0x10000000, length = 4))])),
  ]
);
