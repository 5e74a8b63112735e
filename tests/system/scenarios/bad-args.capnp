# Call arguments that cannot be the method's parameters: reported before anything runs.
@0xe7b2d4f6a8c91035;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  steps = [
    (call = (target = "counter", method = "add", args = "(n = 1)")),
    (call = (target = "counter", method = "add", args = "(n = 1, bogus = 2)")),
    (call = (target = "counter", method = "add", args = "(n = \"seven\")")),
    (repeat = (count = 2, steps = [
      (call = (target = "counter", method = "add", args = "(n = $i)")),
    ])),
    (call = (target = "counter", method = "add", args = "(n = 1)", result = "total"), saveAs = "t"),
    (call = (target = "counter", method = "add", args = "(n = $t)")),
    (call = (target = "counter", method = "add", args = "(m = $t)")),
  ],
);
