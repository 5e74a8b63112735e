# On system/manifests/default.toml: commands built by name reach the SMMU as the commands they
# name; one that does not encode is refused before anything runs (typed-commands-bad.capnp).
@0xc9e1a3b5d7f20486;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (submit = (commands = [(tlbiNhVa = (asid = 3, addr = 0x10000, leaf = true)),
                           (tlbiS2Ipa = (vmid = 1, addr = 0x40000000)),
                           (cfgiSte = (sid = 0x300, leaf = true)),
                           (sync = ())])),
  ],
);
