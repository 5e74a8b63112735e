# One failing expectation of each kind; the runner must report expected, actual and line.
@0xc2f4a6b8d0e1f204;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "every expectation kind, failing",
  steps = [
    (call = (target = "counter", method = "add", args = "(n = 1)"),
     expect = (value = "(total = 7)")),
    (call = (target = "counter", method = "add", args = "(n = 1)"),
     expect = (fields = [(path = "total", equals = "99")])),
    (call = (target = "counter", method = "tryAdd", args = "(n = 1)"),
     expect = (outcome = (errno = eOverflow))),
    (call = (target = "counter", method = "tryAdd", args = "(n = 100000)")),
    (call = (target = "counter", method = "probe", args = "(addr = 2)"),
     expect = (fault = (type = "fTranslation"))),
    (call = (target = "counter", method = "get"),
     expect = (outcome = (exception = "boom"))),
    (call = (target = "counter", method = "load", args = "(pa = 0)")),
    (check = void,
     expect = (counters = [(instance = "counter", counter = "total", equals = 1),
                           (instance = "counter", counter = "adds", atMost = 1),
                           (instance = "counter", counter = "nonesuch", atLeast = 0)])),
    (repeat = (count = 3, steps = [
      (call = (target = "counter", method = "tryAdd", args = "(n = $i)"),
       expect = (outcome = (errno = eOverflow))),
    ])),
  ],
);
