/* tests/bench/linux-peer: stands in for <linux/dma-mapping.h> (see nb-linux-shim.h). */
#include "../nb-linux-shim.h"
