# `whenImpl`: expectations chosen by the implementations the manifest runs. On the fixture
# manifest of tests/system/scenario-test.c++ (fixture/counter and fixture/relay run;
# fixture/chain does not).
@0xd93e5f1a2b7c4e60;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "expectations per implementation",
  steps = [
    (label = "the running implementation's expectation replaces expect",
     call = (target = "counter", method = "tryAdd", args = "(n = 5000)"),
     expect = (outcome = (errno = ok)),
     whenImpl = [(impl = "fixture/chain", expect = (outcome = (errno = eNoMem))),
                 (impl = "fixture/counter", expect = (outcome = (errno = eOverflow))),
                 (impl = "fixture/relay", expect = (outcome = (errno = eBusy)))]),
    (label = "an implementation that does not run changes nothing",
     call = (target = "counter", method = "add", args = "(n = 1)"),
     expect = (value = "(total = 6)"),
     whenImpl = [(impl = "fixture/chain", expect = (value = "(total = 0)"))]),
  ],
);
