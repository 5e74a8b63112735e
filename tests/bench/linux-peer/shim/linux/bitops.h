/* tests/bench/linux-peer: stands in for <linux/bitops.h> (see nb-linux-shim.h). */
#include "../nb-linux-shim.h"
