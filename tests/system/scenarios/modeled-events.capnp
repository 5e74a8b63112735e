# Runs on system/manifests/hw.toml (no driver: the SMMU is disabled, GBPA lets DMA bypass). Each
# step does one chargeable kind of work, so its modeled time is that work's cost: the modeled-time
# test sets distinct costs and checks each step against them (tests/system/modeled-time-test.c++).
@0x96e49216a81636d8;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "modeled time: one kind of chargeable work per step",
  steps = [
    (label = "one MMIO read", mmioRead = (offset = 0x0)),
    (label = "one MMIO write", mmioWrite = (offset = 0x3c, value = 0)),
    (label = "a 4 KiB bypass DMA read", dma = (endpoint = "ep0", iova = 0x4ff00000, length = 4096)),
    (label = "a 6 KiB bypass DMA read", dma = (endpoint = "ep3", iova = 0x4ff00000, length = 6144)),
    (label = "a page table: one call, one table page",
     call = (target = "page_table", method = "create",
             args = "(config = (format = stage1, granule = size4k, ias = 48, oas = 48))",
             result = "table"),
     saveAs = "pt"),
    (label = "one call into page_table", call = (target = "$pt", method = "info")),
  ]
);
