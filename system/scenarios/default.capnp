# The default tour: what `nestbed run` runs on system/manifests/default.toml. It grows to
# exercise every component as they land.
@0xe1a7c3b59d2f4a10;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "nestbed default tour",
  steps = [
    (label = "physical memory is composed and nothing is allocated yet",
     check = void,
     expect = (counters = [(instance = "memory", counter = "used_bytes", equals = 0),
                           (instance = "memory", counter = "size_bytes", atLeast = 16777216)])),

    # ---- page_table: a stage-1 table, a run mapped as one 2M block + pages, a lookup, unmap.
    (call = (target = "page_table", method = "create", result = "table",
             args = "(config = (format = stage1, granule = size4k, ias = 48, oas = 48))"),
     saveAs = "pt"),
    (call = (target = "$pt", method = "map",
             args = "(runs = [(iova = 0x10000000, pa = 0x40200000, size = 0x204000, prot = (read = true, write = true, cache = true))])"),
     expect = (fields = [(path = "bytesMapped", equals = "0x204000")])),
    (call = (target = "$pt", method = "iovaToPhys", args = "(iova = 0x10203abc)"),
     expect = (fields = [(path = "pa", equals = "0x40403abc")])),
    (call = (target = "$pt", method = "unmap", args = "(ranges = [(iova = 0x10000000, size = 0x204000)])"),
     expect = (fields = [(path = "bytesUnmapped", equals = "0x204000")])),
    (call = (target = "$pt", method = "destroy")),
    (label = "every table page went back to hw/mem",
     check = void,
     expect = (counters = [(instance = "memory", counter = "used_bytes", equals = 0),
                           (instance = "page_table", counter = "table_pages_in_use", equals = 0)])),

    # ---- hw: the SMMU's ID registers, then DMA from endpoints (system/scenarios/smmuv3.capnp
    # goes further). Nothing programs the SMMU yet: DMA bypasses it until a stream table of
    # invalid STEs (zeroed memory at the top of RAM) is installed and SMMUEN set.
    (label = "smmu0 IDR0 advertises stage 1 and stage 2 (nesting)",
     mmioRead = (smmu = "smmu0", offset = 0x0), expect = (value = "0x094c709b")),
    (label = "ep0's DMA bypasses the disabled SMMU",
     dma = (endpoint = "ep0", iova = 0x4ff00000, write = true, data = "tour")),
    (dma = (endpoint = "ep2", iova = 0x4ff00000, length = 4), expect = (value = "\"tour\"")),
    (mmioWrite = (offset = 0x80, value = 0x4fe00000, size = 8)),
    (mmioWrite = (offset = 0x88, value = 11)),
    (label = "SMMUEN with a stream table of invalid STEs", mmioWrite = (offset = 0x20, value = 1)),
    (label = "ep0's DMA now faults with C_BAD_STE for its StreamID, moving nothing",
     call = (target = "ep0", method = "dma", args = "(iova = 0x4ff00000, write = true, data = \"xx\")"),
     expect = (fault = (type = "cBadSte", fields = [(path = "sid", equals = "0x300")]),
               fields = [(path = "bytes", equals = "0")])),
    (dma = (endpoint = "ep3", iova = 0x10000, length = 4),
     expect = (fault = (type = "cBadSte", fields = [(path = "sid", equals = "0x501")]))),
  ],
);
