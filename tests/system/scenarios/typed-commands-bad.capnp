# Commands that do not encode: errors naming the command and field, before anything runs.
@0xd1f3a5c7e9b20468;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (submit = (commands = [(sync = ()), (tlbiNhVa = (asid = 3, addr = 0x10001, leaf = true))])),
    (allocNested = (viommu = "$v", vste = [0x9, 0], vsteFields = (config = s1Trans, s1CdMax = 40))),
  ],
);
