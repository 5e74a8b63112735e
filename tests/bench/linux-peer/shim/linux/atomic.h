/* tests/bench/linux-peer: stands in for <linux/atomic.h> (see nb-linux-shim.h). */
#include "../nb-linux-shim.h"
