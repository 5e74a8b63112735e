# Runs on system/manifests/hw.toml (the SMMU disabled: DMA bypasses). An STE and a CD built by
# field are written by DMA and read back; the test compares the bytes with words derived by hand
# from the facts' layouts (tests/system/structure-builders-test.c++).
@0x9afbca248e588034;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "STE and CD builders",
  steps = [
    (label = "an S1 STE: V, S1_TRANS, S1CDMax 1, S1DSS terminate",
     dma = (endpoint = "ep0", iova = 0x4fe10000, write = true,
            steFields = (config = s1Trans, s1CdMax = 1))),
    (label = "an S2 STE: VMID 5, 40-bit IPA at level 1, 4K, PS 40 bits, AArch64, S2R",
     dma = (endpoint = "ep0", iova = 0x4fe10040, write = true,
            steFields = (config = s2Trans, s2Vmid = 5, s2T0sz = 24, s2Sl0 = 1, s2Ps = 2,
                         s2Aa64 = true, s2R = true, s2Ttb = 0x4fe40000))),
    (label = "a CD: 48-bit, 4K, WBWA inner shareable, IPS 48 bits, ASID 3",
     dma = (endpoint = "ep0", iova = 0x4fe20000, write = true,
            cdFields = (t0sz = 16, irgn0 = 1, orgn0 = 1, sh0 = 3, ips = 5, asid = 3,
                        ttb0 = 0x4fe30000, mair = 0x44ff04))),
    (label = "read back", dma = (endpoint = "ep3", iova = 0x4fe10000, length = 128),
     record = "stes"),
    (label = "read back the CD", dma = (endpoint = "ep3", iova = 0x4fe20000, length = 64),
     record = "cd"),
  ]
);
