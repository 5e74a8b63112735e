# On system/manifests/hw.toml: a table the scenario creates is in the --dump-memory sidecar.
@0xb8d2f4a6c0e13957;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (createTable = (config = (format = stage1, granule = size4k, ias = 48, oas = 48)), saveAs = "t"),
    (map = (table = "$t", runs = [(iova = 0x10000, pa = 0x42000000, size = 0x1000,
                                   prot = (read = true))])),
    (call = (target = "$t", method = "info", result = "info.rootPa"), record = "root"),
  ],
);
