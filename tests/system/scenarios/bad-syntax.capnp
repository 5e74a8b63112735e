# Parse errors: reported with file, line and column, several at once.
@0xc2f4a6b8d0e1f206;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (call = (target = "counter", methd = "add")),
    (cal = (target = "counter", method = "add")),
  ],
);
