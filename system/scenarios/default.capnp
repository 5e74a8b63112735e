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
  ],
);
