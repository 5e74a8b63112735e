@0xd0a1c2b3e4f50617;
using import "/interfaces/scenario.capnp".Scenario;
const scenario :Scenario = (steps = [(repeat = (count = 4000000000, steps = [(check = void)]))]);
