# Every step kind and expectation kind, all holding. Runs on the fixture manifest of
# tests/system/scenario-test.c++ (counter starts at 5; relay uses it).
@0xc2f4a6b8d0e1f203;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "all step and expectation kinds, passing",
  steps = [
    (call = (target = "counter", method = "add", args = "(n = 10)"),
     expect = (value = "(total = 15)")),
    (call = (target = "counter", method = "add", args = "(n = 1)", result = "total"),
     saveAs = "t", expect = (value = "16")),
    (call = (target = "relay", method = "addVia", args = "(n = $t)"),
     expect = (fields = [(path = "total", equals = "0x20")])),
    (repeat = (count = 4, counter = "k", start = 1, stride = 2, steps = [
      (call = (target = "counter", method = "add", args = "(n = $k)")),
    ])),
    (label = "sixteen added by the repeat",
     check = void,
     expect = (counters = [(instance = "counter", counter = "total", equals = 48),
                           (instance = "counter", counter = "adds", atLeast = 7),
                           (instance = "relay", counter = "relayed", atMost = 1),
                           (instance = "memory", counter = "used_bytes", equals = 0)])),
    (call = (target = "counter", method = "tryAdd", args = "(n = 5000)"),
     expect = (outcome = (errno = eOverflow), fields = [(path = "total", equals = "48")])),
    (call = (target = "counter", method = "tryAdd", args = "(n = 2)")),
    (call = (target = "counter", method = "probe", args = "(addr = 0x1001)"),
     expect = (fault = (type = "fTranslation", fields = [(path = "addr", equals = "4097")]))),
    (call = (target = "counter", method = "child", args = "(start = 7)", result = "counter"),
     saveAs = "c"),
    (call = (target = "$c", method = "add", args = "(n = 1)"), expect = (value = "(total = 8)")),
    (call = (target = "counter", method = "addFrom", capArgs = [(field = "other", value = "$c")]),
     expect = (value = "(total = 58)")),
    (call = (target = "counter", method = "load", args = "(pa = 0)"),
     expect = (outcome = (exception = "physical address outside memory"))),
    (label = "hw/mem's allocator is a call target: a buffer for the next steps",
     call = (target = "memory", method = "alloc", args = "(bytes = 0x10000, align = 0x10000)",
             result = "runs.0.pa"),
     saveAs = "buf"),
    (call = (target = "counter", method = "store", args = "(pa = $buf, value = 7)")),
    (call = (target = "counter", method = "load", args = "(pa = $buf)"), expect = (value = "(value = 7)")),
    (call = (target = "memory", method = "free", args = "(runs = [(pa = $buf, bytes = 0x10000)])"),
     expect = (counters = [(instance = "memory", counter = "used_bytes", equals = 0)])),
  ],
);
