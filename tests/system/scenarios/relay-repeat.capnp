# Adds through the wired edge relay -> counter, and directly: the trace test counts the RPCs in
# `--trace` against the components' counters, the sweep test sweeps the counter's start.
@0xa4c2e6f8b1d3957b;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "25 adds through the relay, 3 directly",
  steps = [
    (repeat = (count = 25, counter = "k", start = 1, steps = [
      (call = (target = "relay", method = "addVia", args = "(n = $k)")),
    ])),
    (repeat = (count = 3, steps = [
      (call = (target = "counter", method = "add", args = "(n = 1)")),
    ])),
    (check = void,
     expect = (counters = [(instance = "relay", counter = "relayed", equals = 25),
                           (instance = "counter", counter = "adds", equals = 28)])),
  ],
);
