# Runs on system/manifests/default.toml. Two submissions through smmu_queue, one command and nine:
# each ends in a CMD_SYNC the driver waits for, so the second waits for eight more commands
# (tests/system/modeled-time-test.c++).
@0xc9774f2d9d72f8da;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "modeled time: a CMD_SYNC behind N commands",
  steps = [
    (label = "one TLBI_NSNH_ALL and its SYNC", submit = (commands = [(dw0 = 0x30)])),
    (label = "nine TLBI_NSNH_ALL and their SYNC",
     submit = (commands = [(dw0 = 0x30), (dw0 = 0x30), (dw0 = 0x30), (dw0 = 0x30), (dw0 = 0x30),
                           (dw0 = 0x30), (dw0 = 0x30), (dw0 = 0x30), (dw0 = 0x30)])),
  ]
);
