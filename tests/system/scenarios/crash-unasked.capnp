# A component dies unasked (the fixture counter SIGKILLs its own process mid-call): the step
# fails naming it, later steps that need it too, and the run fails with the death reported,
# even though every step expects the failure it gets.
@0xd9e3b5a7c1f20486;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "a component dies unasked",
  steps = [
    (call = (target = "counter", method = "crash"),
     expect = (outcome = (exception = "component 'counter'"))),
    (call = (target = "relay", method = "addVia", args = "(n = 1)"),
     expect = (outcome = (exception = "component 'counter'"))),
    (label = "a counter check on the dead component",
     check = void, expect = (counters = [(instance = "counter", counter = "total", atLeast = 0)])),
  ],
);
