// The TOML manifest: parsing, validation against the registry, and the start plan.
//
// Owns: turning a manifest file (plus `--set key=value` overrides) into a Plan — memory, every
// hardware and component instance with its implementation, placement, restart policy, wiring
// and own settings — in dependency order. Validation happens entirely here, before anything
// starts; every error names file, line, column and key, and all errors are reported together.
// Does not own: starting anything (composer.h).
//
// Manifest shape:
//   [memory]                      base = 0x40000000, size = "256MiB", file = "mem.img" (opt.;
//                                 an existing file only with overwrite = true)
//   [[hw.<model>]]                name = "smmu0", placement, restart, uses, model settings
//   [components.<instance>]       impl = "<component>/<impl>", placement, restart, uses,
//                                 component settings
//   [timing]                      profile = "neoverse-smmuv3" (a shipped profile, a path to a
//                                 profile TOML relative to the manifest, or "off"), optional
//                                 [timing.costs] overrides: mmio_read = 200 (ns)
//   placement = "inline" | "process"; restart = "never" | "on-failure";
//   boundary = "call" | "ipc" | "hypercall" | "process" | "none": what a call into the instance
//              crosses in the modeled system (its modeled cost); components default to "call",
//              hardware to "none" (a model charges its own MMIO)
//   uses = { role = "instance", listRole = ["a", "b"] }   (a list role: RoleSpec::list)

#pragma once

#include "system/runtime/contract.h"
#include "system/runtime/modeled-time.h"

#include <kj/one-of.h>
#include <toml++/toml.h>

namespace nb {

enum class Placement { INLINE, PROCESS };
enum class Restart { NEVER, ON_FAILURE };

struct SourcePos {
  kj::String file;   // manifest path, or "--set" for an override
  uint32_t line = 0;
  uint32_t column = 0;
};

struct ManifestError {
  SourcePos pos;
  kj::String key;      // dotted path, e.g. "components.page_table.partial_unmap"
  kj::String message;
};
kj::String KJ_STRINGIFY(const ManifestError& e);

struct Wire {
  kj::String role;     // a list role has one Wire per element, in manifest order
  kj::String target;   // instance name
};

struct InstancePlan {
  kj::String name;
  kj::String impl;                 // registry key
  const ComponentType* type;
  Placement placement = Placement::INLINE;
  Restart restart = Restart::NEVER;
  Boundary boundary = Boundary::CALL;
  kj::Vector<Wire> uses;
  toml::table settings;            // the instance's own keys only
  SourcePos pos;
};

struct MemoryPlan {
  uint64_t base;
  uint64_t size;
  kj::Maybe<kj::String> file;
};

// The modeled machine's costs: the profile [timing] names (default: DEFAULT_PROFILE), with the
// manifest's [timing.costs] overrides and `--set timing.costs.<key>=<ns>` applied.
constexpr const char* DEFAULT_PROFILE = "neoverse-smmuv3";
struct TimingPlan {
  CostProfile profile;
  kj::String origin;     // "shipped" or the profile file's path
  bool enabled = true;   // profile = "off": nothing is charged (to measure what charging costs)
};

struct Plan {
  kj::String file;
  kj::String effective;   // the manifest as TOML with every override applied (provenance)
  MemoryPlan memory;
  TimingPlan timing;
  kj::Vector<InstancePlan> instances;  // dependency order: every instance after those it uses

  kj::Maybe<const InstancePlan&> find(kj::StringPtr name) const;
};

// A `--set` override: dotted key path and a value in TOML syntax (bare words are strings).
struct Override {
  kj::String key;
  kj::String value;
};
kj::Maybe<Override> parseOverride(kj::StringPtr text);

using ManifestResult = kj::OneOf<Plan, kj::Array<ManifestError>>;

ManifestResult loadManifest(kj::StringPtr path, const Registry& registry,
                            kj::ArrayPtr<const Override> overrides = nullptr);
// The same, from text already in memory (`path` names it in errors).
ManifestResult parseManifest(kj::StringPtr text, kj::StringPtr path, const Registry& registry,
                             kj::ArrayPtr<const Override> overrides = nullptr);

// Human-readable plan (`nestbed check`) and graphviz DOT (`nestbed graph`).
kj::String formatPlan(const Plan& plan);
kj::String planToDot(const Plan& plan);

kj::StringPtr placementName(Placement p);

}  // namespace nb
