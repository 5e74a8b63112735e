// The component contract: registry, settings access and the generic lifecycle server.

#include "system/runtime/contract.h"

#include <toml++/toml.h>
#include <unistd.h>

#include "system/runtime/sizes.h"

namespace nb {

// ---- Registry

void Registry::add(ComponentType&& type) {
  KJ_REQUIRE(types_.find(type.name) == nullptr, "component type registered twice", type.name);
  auto own = kj::heap<ComponentType>(kj::mv(type));
  kj::StringPtr key = own->name;
  types_.insert(key, kj::mv(own));
}

kj::Maybe<const ComponentType&> Registry::find(kj::StringPtr name) const {
  KJ_IF_MAYBE(t, types_.find(name)) { return **t; }
  return nullptr;
}

kj::Array<kj::StringPtr> Registry::names() const {
  auto out = kj::heapArrayBuilder<kj::StringPtr>(types_.size());
  for (auto& e : types_) out.add(e.key);
  return out.finish();
}

// ---- Settings

Settings::Settings(const toml::table& table, const ComponentType& type) : table_(table) {}

bool Settings::has(kj::StringPtr key) const { return table_.contains(std::string_view(key.cStr())); }

int64_t Settings::integer(kj::StringPtr key, int64_t fallback) const {
  return table_[std::string_view(key.cStr())].value_or<int64_t>(int64_t(fallback));
}

bool Settings::boolean(kj::StringPtr key, bool fallback) const {
  return table_[std::string_view(key.cStr())].value_or<bool>(bool(fallback));
}

kj::String Settings::string(kj::StringPtr key, kj::StringPtr fallback) const {
  auto v = table_[std::string_view(key.cStr())].value<std::string>();
  return v ? kj::heapString(v->data(), v->size()) : kj::heapString(fallback);
}

uint64_t Settings::size(kj::StringPtr key, uint64_t fallback) const {
  auto node = table_[std::string_view(key.cStr())];
  if (auto i = node.value<int64_t>()) return uint64_t(*i);
  if (auto s = node.value<std::string>()) {
    KJ_IF_MAYBE(v, parseSize(kj::StringPtr(s->c_str()))) { return *v; }
  }
  return fallback;
}

// ---- ComponentContext

void ComponentContext::bind(kj::StringPtr role, capnp::Capability::Client cap) {
  uses_.findOrCreate(role, [&]() {
    return decltype(uses_)::Entry{kj::heapString(role), {}};
  }).add(kj::mv(cap));
}

kj::Maybe<capnp::Capability::Client> ComponentContext::tryUse(kj::StringPtr role) {
  KJ_IF_MAYBE(list, uses_.find(role)) {
    KJ_REQUIRE(list->size() == 1, "role is wired to a list: use useList()", instance, role);
    return (*list)[0];
  }
  return nullptr;
}

// ---- The lifecycle server

namespace {

class LifecycleServer final : public rpc::Component::Server {
public:
  LifecycleServer(kj::StringPtr impl, uint64_t interfaceId, capnp::Capability::Client main,
                  ComponentCore& core, kj::Maybe<kj::Function<void()>> onShutdown)
      : impl_(kj::heapString(impl)), interfaceId_(interfaceId), main_(kj::mv(main)),
        core_(core), onShutdown_(kj::mv(onShutdown)) {}

protected:
  kj::Promise<void> main(MainContext context) override {
    requireRunning();
    context.getResults(capnp::MessageSize{4, 1}).setCap(KJ_ASSERT_NONNULL(main_));
    return kj::READY_NOW;
  }

  kj::Promise<void> info(InfoContext context) override {
    auto info = context.getResults().initInfo();
    info.setImpl(impl_);
    info.setInterfaceId(interfaceId_);
    info.setPid(getpid());
    return kj::READY_NOW;
  }

  kj::Promise<void> stats(StatsContext context) override {
    requireRunning();
    kj::Vector<Stat> stats;
    core_.stats(stats);
    auto list = context.getResults().initCounters(stats.size());
    for (auto i : kj::indices(stats)) {
      list[i].setName(stats[i].name);
      list[i].setValue(stats[i].value);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> structures(StructuresContext context) override {
    requireRunning();
    kj::Vector<StructureInfo> structures;
    core_.structures(structures);
    auto list = context.getResults().initStructures(structures.size());
    for (auto i : kj::indices(structures)) {
      auto& s = structures[i];
      list[i].setKind(s.kind);
      list[i].setName(s.name);
      list[i].setPa(s.pa);
      list[i].setSize(s.size);
      list[i].setDetail(s.detail);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> shutdown(ShutdownContext context) override {
    if (main_ == nullptr) return kj::READY_NOW;  // already shut down: idempotent
    return core_.shutdown().then([this]() {
      main_ = nullptr;  // drops the main capability: the implementation is freed with it
      KJ_IF_MAYBE(f, onShutdown_) { (*f)(); }
    });
  }

private:
  void requireRunning() { KJ_REQUIRE(main_ != nullptr, "component has been shut down", impl_); }

  kj::String impl_;
  uint64_t interfaceId_;
  kj::Maybe<capnp::Capability::Client> main_;
  ComponentCore& core_;
  kj::Maybe<kj::Function<void()>> onShutdown_;
};

}  // namespace

rpc::Component::Client makeComponent(kj::StringPtr impl, uint64_t interfaceId,
                                     capnp::Capability::Client main, ComponentCore& core,
                                     kj::Maybe<kj::Function<void()>> onShutdown) {
  return kj::heap<LifecycleServer>(impl, interfaceId, kj::mv(main), core, kj::mv(onShutdown));
}

}  // namespace nb
