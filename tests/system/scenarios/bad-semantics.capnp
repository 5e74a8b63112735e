# Semantic errors the runner reports before anything runs, all of them.
@0xc2f4a6b8d0e1f205;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (call = (target = "countr", method = "add")),
    (call = (target = "counter", method = "ad")),
    (call = (target = "counter", method = "add", args = "(n = $later)")),
    (call = (target = "$c", method = "add")),
    (call = (target = "counter", method = "add", result = "totl")),
    (check = void, expect = (counters = [(instance = "pager", counter = "x", equals = 1)])),
  ],
);
