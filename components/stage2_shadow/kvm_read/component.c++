// components/stage2_shadow/kvm_read: the MapSource that asks the VM. See component.h.
//
// Every update costs one Vm.memslots() RPC and a walk of every slot it returns: the KVM-owned
// design couples the IOMMU's stage 2 to KVM's own memory map and reads it whenever it changes,
// keeping no copy of it (counters vm_calls and slots_read).

#include "components/stage2_shadow/kvm_read/component.h"

#include "components/stage2_shadow/common/shadow.h"

namespace nb::s2 {

namespace {

class KvmRead final : public MapSource {
public:
  KvmRead(rpc::Vm::Client vm, Counters& counters) : vm(kj::mv(vm)), counters(counters) {}

  kj::Promise<Snapshot> snapshot() override {
    return readSlots().then([](kj::Array<Run>&& slots) {
      return Snapshot{rpc::Errno::OK, nullptr, kj::mv(slots)};
    });
  }

  kj::Promise<kj::Array<Run>> resolve(const SlotChange& change,
                                      kj::ArrayPtr<const Span> spans) override {
    auto wanted = kj::heapArray(spans);
    return readSlots().then([wanted = kj::mv(wanted)](kj::Array<Run>&& slots) {
      // Slots come by ascending GPA and spans are sorted and disjoint: the clipped pieces
      // come out by ascending GPA.
      kj::Vector<Run> out;
      for (auto& slot : slots) {
        for (auto& span : wanted) {
          KJ_IF_MAYBE (piece, clip(slot, span)) { out.add(*piece); }
        }
      }
      return out.releaseAsArray();
    });
  }

private:
  // The VM's whole memory map, one RPC; every entry counts as read and walked.
  kj::Promise<kj::Array<Run>> readSlots() {
    counters.vmCalls++;
    return vm.memslotsRequest(capnp::MessageSize{4, 0}).send().then([this](auto&& r) {
      auto slots = r.getSlots();
      counters.slotsRead += slots.size();
      return KJ_MAP(s, slots) { return runOf(s); };
    });
  }

  rpc::Vm::Client vm;
  Counters& counters;
};

kj::Promise<rpc::Component::Client> makeKvmRead(ComponentContext& ctx) {
  return makeShadowComponent(ctx, [](rpc::Vm::Client vm, Counters& counters) -> kj::Own<MapSource> {
    return kj::heap<KvmRead>(kj::mv(vm), counters);
  });
}

}  // namespace

ComponentType kvmReadType() {
  return ComponentType{
      "stage2_shadow/kvm_read",
      "per VM, a nest-parent stage-2 domain mirroring its memslots, kept coherent on memslot "
      "notices; GPA -> PA read from the VM's memslots on every update (a KVM-owned stage 2)",
      capnp::Schema::from<rpc::Stage2Shadow>(),
      nullptr,
      shadowRoles(),
      makeKvmRead};
}

}  // namespace nb::s2
