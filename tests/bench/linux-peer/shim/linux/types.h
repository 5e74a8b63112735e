/* tests/bench/linux-peer: stands in for <linux/types.h> (see nb-linux-shim.h). */
#include "../nb-linux-shim.h"
