@0xb34a23ffd6da57c7;
# The PCIe topology model (hw/pci): one PCI segment whose root complex sits behind one SMMU.
#
# Design stance: the topology is data from the manifest, exported whole, so that an OS-side
# group manager can form iommu groups the way Linux does (facts 6: ACS on the upstream path,
# multifunction devices, DMA aliases) without any access to the manifest. Every device carries
# the SMMU capability it sits behind. Capability-based: no names of other components, except
# the SMMU's own instance name (SmmuInfo.name), which tells SMMU instances apart.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nb::rpc");

using Common = import "/interfaces/common.capnp";
using Smmu = import "/interfaces/smmuv3.capnp";

enum PciKind {
  endpoint @0;           # a function that issues DMA (on the root bus: an integrated endpoint)
  rootPort @1;           # PCIe root port: a bridge on the root bus
  switchUpstream @2;     # a switch's upstream port
  switchDownstream @3;   # a switch's downstream port
  pcieToPciBridge @4;    # PCIe-to-PCI bridge: takes ownership of its secondary side's requests
}

struct Acs {
  # The function's ACS capability (PCIe ACS Capability register); Linux enables what is there.
  # Linux's isolation test needs sv, rr, cr and uf on every port of the upstream path (facts 6).
  sv @0 :Bool;   # source validation
  tb @1 :Bool;   # translation blocking
  rr @2 :Bool;   # P2P request redirect
  cr @3 :Bool;   # P2P completion redirect
  uf @4 :Bool;   # upstream forwarding
  ec @5 :Bool;   # P2P egress control
  dt @6 :Bool;   # direct translated P2P
}

enum AliasReason {
  quirk @0;      # a DMA alias quirk from the manifest (the device also issues DMA as this RID)
  bridge @1;     # a PCIe-to-PCI bridge upstream takes ownership: (secondary bus, 00.0)
}

struct PciAlias {
  # Another requester ID the device's DMA can carry.
  bdf @0 :Text;          # "0000:02:00.0"
  rid @1 :UInt16;
  streamId @2 :UInt32;
  reason @3 :AliasReason;
}

struct PciHop {
  # One bridge on a device's upstream path.
  bdf @0 :Text;
  rid @1 :UInt16;
  kind @2 :PciKind;
  acs @3 :Acs;
  secondaryBus @4 :UInt8;
}

struct PciDevice {
  bdf @0 :Text;              # "ssss:bb:dd.f", hex, e.g. "0000:03:00.0"
  segment @1 :UInt16;
  bus @2 :UInt8;
  device @3 :UInt8;          # 0..31
  function @4 :UInt8;        # 0..7
  rid @5 :UInt16;            # requester ID: bus << 8 | device << 3 | function
  kind @6 :PciKind;
  streamId @7 :UInt32;       # the StreamID of `rid`: sid_base + rid
  dmaRid @8 :UInt16;         # the requester ID its DMA carries at the root complex (its own
                             # `rid`, or the takeover RID of a PCIe-to-PCI bridge upstream)
  dmaStreamId @9 :UInt32;    # the StreamID the SMMU sees for its DMA: sid_base + dmaRid
  multifunction @10 :Bool;   # other functions share its bus and device number
  acs @11 :Acs;              # its own ACS capability (ports; multifunction endpoints)
  secondaryBus @12 :UInt8;   # bridges: the bus behind it; 0 otherwise
  parent @13 :Text;          # the bridge it sits behind; "" on the root bus
  path @14 :List(PciHop);    # upstream bridges, nearest first, ending at a root port
  aliases @15 :List(PciAlias);  # other RIDs its DMA can carry (not its own rid)
  smmu @16 :Smmu.Smmuv3;     # the SMMU it sits behind
  smmuName @17 :Text;        # that SMMU's instance name (SmmuInfo.name)
}

interface PciTopology {
  devices @0 () -> (devices :List(PciDevice));
  # Every function (ports and bridges too), sorted by RID.

  device @1 (bdf :Text) -> (errno :Common.Errno, device :PciDevice);
  # One function by "bb:dd.f" or "ssss:bb:dd.f"; eNoDev if absent, eInval if not a BDF.

  info @2 () -> (segment :UInt16, sidBase :UInt32, smmu :Smmu.Smmuv3, smmuName :Text,
                 devices :UInt32);
  # The root complex: its segment, the RID -> StreamID offset, and its SMMU.
}
