# Scenario parameters: `adds` counter adds (default 3) of `n` each (no default).
# A comment is not substituted: ${ghost} here is neither a parameter nor an error.
@0xb9e3c5a7d1f28460;
using import "/interfaces/scenario.capnp".Scenario;

const scenario :Scenario = (
  description = "${adds:-3} adds of ${n}",
  steps = [
    (repeat = (count = ${adds:-3}, steps = [
      (call = (target = "counter", method = "add", args = "(n = ${n})")),
    ])),
  ],
);
