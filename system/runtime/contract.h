// The component contract in C++: how a component implementation is described, built and
// introspected. Shared by the composer, the host process and every component.
//
// Owns: ComponentType (a registry entry: settings schema, roles, factory), Registry,
// ComponentContext (what a factory receives) and makeComponent() (the generic lifecycle server
// wrapping an implementation's main capability). Does not own: manifests (system/composer) or
// any component's behaviour.
//
// Stance: no global registries. Each binary builds its Registry explicitly in one place
// (system/registry.c++), so what a binary can host is visible in one file.

#pragma once

#include "hw/mem/phys-mem.h"
#include "interfaces/component.capnp.h"
#include "interfaces/mem.capnp.h"
#include "system/runtime/modeled-time.h"

#include <capnp/capability.h>
#include <capnp/schema.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/function.h>
#include <kj/map.h>
#include <kj/vector.h>

namespace toml {
inline namespace v3 {
class node;
class table;
}  // namespace v3
}  // namespace toml

namespace nb {

// ======================================================================================
// Describing a component type

enum class SettingType {
  INTEGER,  // TOML integer
  BOOLEAN,  // TOML boolean
  STRING,   // TOML string
  CHOICE,   // TOML string, one of `choices`
  SIZE,     // bytes: a TOML integer or a string with a binary unit ("256MiB", "4K")
  ARRAY,    // TOML array (its elements checked by `validate`)
  TABLE,    // TOML table (its keys checked by `validate`)
};

// The manifest's physical memory ([memory] base and size).
struct MemoryRange {
  uint64_t base;
  uint64_t size;
};

// Where a setting's own validator reports what is wrong inside a structured value. `at` is the
// offending node (its source position is reported), `keySuffix` is appended to the setting's
// dotted key (e.g. ".devices.2.bdf").
class SettingErrors {
public:
  virtual void error(const toml::node& at, kj::StringPtr keySuffix, kj::String message) = 0;
  // The manifest's physical memory, for settings that place things at physical addresses (a
  // VM's memslot `pa`). Null when [memory] did not validate or there is no manifest.
  virtual kj::Maybe<MemoryRange> memory() { return nullptr; }
};

struct SettingSpec {
  kj::StringPtr key;
  SettingType type;
  bool required = false;
  kj::ArrayPtr<const kj::StringPtr> choices = nullptr;  // for CHOICE
  kj::StringPtr doc = nullptr;
  // Deeper checks of the value (ranges, structure), reporting every problem found.
  void (*validate)(const toml::node& value, SettingErrors& errors) = nullptr;
};

struct RoleSpec {
  kj::StringPtr role;        // key in the manifest's `uses` table
  capnp::InterfaceSchema interface;  // the main interface the wired instance(s) must serve
  bool required = true;      // a list role: at least one instance
  kj::StringPtr doc = nullptr;
  bool list = false;         // takes a list of instances, in order: `uses = { queues = ["q0",
                             // "q1"] }` (one per SMMU instance, say); ComponentContext::useList
};

class ComponentContext;

struct Stat {
  kj::String name;
  uint64_t value;
};

struct StructureInfo {
  kj::String kind;    // "stream_table", "page_table_root", ...
  kj::String name;
  uint64_t pa;
  uint64_t size;
  kj::String detail;
};

// What an implementation provides to the generic lifecycle server.
class ComponentCore {
public:
  virtual ~ComponentCore() noexcept(false) = default;
  // Deterministic counters, in a stable order.
  virtual void stats(kj::Vector<Stat>& out) = 0;
  // Structures this component has placed in physical memory (for --dump-memory).
  virtual void structures(kj::Vector<StructureInfo>& out) {}
  // Called once on orderly shutdown; release frames and capabilities here.
  virtual kj::Promise<void> shutdown() { return kj::READY_NOW; }
};

// A plain function: registries are built from static tables of these.
using Factory = kj::Promise<rpc::Component::Client> (*)(ComponentContext&);

// What an implementation's state survives: whether `restart = "on-failure"` may start a new
// process in its place. No call may return ok on state its server no longer has.
enum class Recovery {
  NONE,       // its state lives only in its process: not restartable (manifest.c++), its death
              // fails every step that needs it, named
  STATELESS,  // its main capability keeps no state callers rely on (a factory): dependants are
              // rewired to the new process; what the old one handed out fails, named
  ADOPTS,     // the new process takes over the old one's state from shared memory and the
              // hardware: dependants are rewired; what the old one handed out fails, named
};

struct ComponentType {
  kj::StringPtr name;          // registry key "<component>/<impl>", or "hw/<model>"
  kj::StringPtr doc;
  capnp::InterfaceSchema interface;  // the main capability's interface (compiled schema)
  kj::Array<SettingSpec> settings;
  kj::Array<RoleSpec> roles;
  Factory factory;
  bool isHardware = false;
  Recovery recovery = Recovery::NONE;
};

class Registry {
public:
  void add(ComponentType&& type);
  kj::Maybe<const ComponentType&> find(kj::StringPtr name) const;
  kj::Array<kj::StringPtr> names() const;  // sorted

private:
  kj::TreeMap<kj::StringPtr, kj::Own<ComponentType>> types_;
};

// ======================================================================================
// Building one

class Settings {
  // Read access to a component's own (already validated) TOML settings.
public:
  explicit Settings(const toml::table& table, const ComponentType& type);
  int64_t integer(kj::StringPtr key, int64_t fallback = 0) const;
  bool boolean(kj::StringPtr key, bool fallback = false) const;
  kj::String string(kj::StringPtr key, kj::StringPtr fallback = "") const;
  uint64_t size(kj::StringPtr key, uint64_t fallback = 0) const;
  bool has(kj::StringPtr key) const;
  const toml::table& table() const { return table_; }

private:
  const toml::table& table_;
};

class ComponentContext {
public:
  ComponentContext(kj::StringPtr instance, const ComponentType& type, const toml::table& settings,
                   PhysMem& mem, rpc::FrameAllocator::Client frames, kj::Timer& timer,
                   ModeledClock& clock = ModeledClock::off())
      : instance(instance), type(type), settings(settings, type), mem(mem),
        frames(kj::mv(frames)), timer(timer), clock(clock) {}

  kj::StringPtr instance;             // manifest instance name
  const ComponentType& type;
  Settings settings;
  PhysMem& mem;                       // this process's mapping of physical memory
  rpc::FrameAllocator::Client frames; // hw/mem's frame allocator
  kj::Timer& timer;                   // nestbed's own time: timeouts only, never results
  ModeledClock& clock;                // the modeled machine's time: charge what the component does

  void bind(kj::StringPtr role, capnp::Capability::Client cap);
  // Wires `cap` to `role`; binding a role again appends to it (a list role, in manifest order).

  // The capability wired to `role`, cast to its interface. Missing optional roles are null.
  kj::Maybe<capnp::Capability::Client> tryUse(kj::StringPtr role);
  template <typename T>
  typename T::Client use(kj::StringPtr role) {
    KJ_IF_MAYBE(c, tryUse(role)) { return c->castAs<T>(); }
    KJ_FAIL_REQUIRE("component has no capability wired to this role", instance, role);
  }

  // Every capability wired to a list role, in manifest order (empty if none).
  template <typename T>
  kj::Array<typename T::Client> useList(kj::StringPtr role) {
    KJ_IF_MAYBE(list, uses_.find(role)) {
      return KJ_MAP(c, *list) { return c.castAs<T>(); };
    }
    return nullptr;
  }

private:
  kj::HashMap<kj::String, kj::Vector<capnp::Capability::Client>> uses_;
};

// The generic lifecycle server: serves `main`, and asks `core` for stats and shutdown.
// `core` must stay alive as long as `main` does (usually `core` is main's server object).
rpc::Component::Client makeComponent(kj::StringPtr impl, uint64_t interfaceId,
                                     capnp::Capability::Client main, ComponentCore& core,
                                     kj::Maybe<kj::Function<void()>> onShutdown = nullptr);

}  // namespace nb
