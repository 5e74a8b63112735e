// hw/mem: FrameAllocator over RPC. Errors are data (errno), never exceptions: a component that
// runs out of memory gets eNoMem and decides what to do.

#include "hw/mem/frame-allocator-server.h"

#include "util/bits.h"

#include <algorithm>
#include <utility>

namespace nb {
namespace {

class FrameAllocatorServer final : public rpc::FrameAllocator::Server {
public:
  explicit FrameAllocatorServer(FrameAllocator& allocator) : allocator_(allocator) {}

protected:
  kj::Promise<void> alloc(AllocContext context) override {
    auto params = context.getParams();
    uint64_t bytes = params.getBytes(), align = params.getAlign();
    uint32_t count = params.getCount();
    const PhysAddr below = params.getBelow();
    auto results = context.getResults();
    if (bytes == 0 || !isAligned(bytes, FRAME_SIZE) || !isPow2(align) || align < FRAME_SIZE) {
      results.setErrno(rpc::Errno::E_INVAL);
      return kj::READY_NOW;
    }
    kj::Vector<PhysAddr> got;
    for (uint32_t i = 0; i < count; i++) {
      auto pa_ = below == 0 ? allocator_.allocFrames(bytes, align)
                            : allocator_.allocFramesBelow(bytes, align, below);
      KJ_IF_MAYBE(pa, pa_) {
        got.add(*pa);
      } else {
        for (auto pa : got) allocator_.freeFrames(pa, bytes);  // all or nothing
        results.setErrno(rpc::Errno::E_NO_MEM);
        return kj::READY_NOW;
      }
    }
    auto runs = results.initRuns(got.size());
    for (auto i : kj::indices(got)) {
      runs[i].setPa(got[i]);
      runs[i].setBytes(bytes);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> free(FreeContext context) override {
    auto runs = context.getParams().getRuns();
    // Validate everything first so a bad request frees nothing: every run in use, and no two
    // runs sharing a frame (the second free of a shared frame would be a double free).
    for (auto r : runs) {
      if (!isRun(r.getPa(), r.getBytes()) || !allocator_.isAllocated(r.getPa(), r.getBytes())) {
        context.getResults().setErrno(rpc::Errno::E_INVAL);
        return kj::READY_NOW;
      }
    }
    kj::Vector<std::pair<PhysAddr, uint64_t>> sorted(runs.size());
    for (auto r : runs) sorted.add(r.getPa(), r.getBytes());
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); i++) {
      if (sorted[i].first - sorted[i - 1].first < sorted[i - 1].second) {
        context.getResults().setErrno(rpc::Errno::E_INVAL);
        return kj::READY_NOW;
      }
    }
    for (auto r : runs) allocator_.freeFrames(r.getPa(), r.getBytes());
    return kj::READY_NOW;
  }

  kj::Promise<void> reserve(ReserveContext context) override {
    auto runs = context.getParams().getRuns();
    for (auto r : runs) {
      if (!isRun(r.getPa(), r.getBytes())) {
        context.getResults().setErrno(rpc::Errno::E_INVAL);
        return kj::READY_NOW;
      }
    }
    // All or nothing: undo the runs already claimed when one is (partly) in use.
    for (auto i : kj::indices(runs)) {
      if (!allocator_.reserve(runs[i].getPa(), runs[i].getBytes())) {
        for (size_t j = 0; j < i; j++) allocator_.freeFrames(runs[j].getPa(), runs[j].getBytes());
        context.getResults().setErrno(rpc::Errno::E_BUSY);
        return kj::READY_NOW;
      }
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    auto results = context.getResults();
    results.setBase(allocator_.base());
    results.setSize(allocator_.size());
    results.setUsedBytes(allocator_.usedBytes());
    return kj::READY_NOW;
  }

private:
  // A non-empty, 4 KiB-aligned run inside the managed memory.
  bool isRun(PhysAddr pa, uint64_t bytes) const {
    return pa >= allocator_.base() && bytes > 0 && isAligned(pa, FRAME_SIZE) &&
           isAligned(bytes, FRAME_SIZE) && pa - allocator_.base() <= allocator_.size() &&
           bytes <= allocator_.size() - (pa - allocator_.base());
  }

  FrameAllocator& allocator_;
};

}  // namespace

rpc::FrameAllocator::Client serveFrameAllocator(FrameAllocator& allocator) {
  return kj::heap<FrameAllocatorServer>(allocator);
}

}  // namespace nb
