# Commands through smmu0's CMDQ on system/manifests/hw.toml (no driver), programmed by hand:
# the queue in the top of RAM, its commands written there by ep0's bypass DMA (the SMMU is not
# enabled), CMDQEN, then two batches by PROD. The trace test counts them in `--trace` against
# the SMMU's counters.
@0xb6f0d1c2a3e49587;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "two command batches through smmu0's CMDQ",
  steps = [
    (label = "CMD_CFGI_STE_RANGE with RANGE = 31 (Linux's CFGI_ALL), CMD_TLBI_NSNH_ALL, CMD_SYNC at CMDQ entries 0..2",
     dma = (endpoint = "ep0", iova = 0x4fd00000, write = true,
            data = 0x"04 00 00 00 00 00 00 00  1f 00 00 00 00 00 00 00
                      30 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
                      46 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00")),
    (label = "CMDQ_BASE: 16 entries at 0x4fd00000", mmioWrite = (offset = 0x90, value = 0x4fd00004, size = 8)),
    (label = "CR0.CMDQEN", mmioWrite = (offset = 0x20, value = 8)),
    (label = "PROD = 3: the first batch", mmioWrite = (offset = 0x98, value = 3),
     expect = (counters = [(instance = "smmu0", counter = "cmdq_consumed", equals = 3)])),
    (label = "CMD_TLBI_NSNH_ALL, CMD_SYNC at entries 3..4",
     dma = (endpoint = "ep0", iova = 0x4fd00030, write = true,
            data = 0x"30 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
                      46 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00")),
    (label = "PROD = 5: the second batch", mmioWrite = (offset = 0x98, value = 5)),
    (mmioRead = (offset = 0x9c), expect = (value = "5")),
    (check = void,
     expect = (counters = [(instance = "smmu0", counter = "cmdq_consumed", equals = 5),
                           (instance = "smmu0", counter = "cmdq_op_cfgi_ste_range", equals = 1),
                           (instance = "smmu0", counter = "cmdq_op_tlbi_nsnh_all", equals = 2),
                           (instance = "smmu0", counter = "cmdq_op_sync", equals = 2)])),
  ],
);
