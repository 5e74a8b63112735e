# On system/manifests/default.toml: ep0's translated default domain maps nothing, so its DMA
# faults. A step that does not expect the fault fails; one that names it, or says that any
# outcome will do, passes.
@0xa3c5e7f9b1d24068;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (dma = (endpoint = "ep0", iova = 0x10000000, length = 4)),
    (dma = (endpoint = "ep0", iova = 0x10000000, length = 4), expect = (outcome = (any = void))),
    (dma = (endpoint = "ep0", iova = 0x10000000, length = 4),
     expect = (fields = [(path = "fault.sid", equals = "0x300")])),
    (dma = (endpoint = "ep0", iova = 0x10000000, length = 4), record = "what happened",
     expect = (fault = (type = "fTranslation"))),
    (claimDevice = (device = "03:00.0"), saveAs = "o"),
    (dma = (endpoint = "ep0", iova = 0x10000000, length = 4)),
    (mmioRead = (offset = 0x0), record = "IDR0"),
  ],
);
