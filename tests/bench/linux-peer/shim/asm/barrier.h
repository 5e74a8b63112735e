/* tests/bench/linux-peer: stands in for <asm/barrier.h> (see nb-linux-shim.h). */
#include "../nb-linux-shim.h"
