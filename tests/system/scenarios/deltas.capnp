# Per-step accounting with counts known by construction (fixture manifest: counter starts at 5,
# relay adds through it): every step's counter changes are what its calls must have done.
@0xd4a1c7e9b3f20586;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "per-step counter deltas",
  steps = [
    (call = (target = "counter", method = "add", args = "(n = 2)")),
    (repeat = (count = 3, steps = [
      (call = (target = "relay", method = "addVia", args = "(n = 1)")),
    ])),
    (label = "nothing happens", check = void),
    (call = (target = "counter", method = "allocFrame", result = "pa"), saveAs = "f",
     record = "frame"),
    (print = "the frame is at $f"),
    (call = (target = "counter", method = "tryAdd", args = "(n = 5000)"), record = "refused",
     expect = (outcome = (errno = eOverflow))),
  ],
);
