// hw/mem: the frame allocator's RPC face (interfaces/mem.capnp FrameAllocator), served by the
// composer over the one FrameAllocator that owns physical memory.
#pragma once

#include "hw/mem/frame-allocator.h"
#include "interfaces/mem.capnp.h"

namespace nb {

// `allocator` must outlive every client of the returned capability.
rpc::FrameAllocator::Client serveFrameAllocator(FrameAllocator& allocator);

}  // namespace nb
