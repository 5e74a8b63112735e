// Manifest parsing and validation. See manifest.h.

#include "system/composer/manifest.h"

#include "system/runtime/sizes.h"
#include "util/text-bounds.h"

#include <kj/debug.h>
#include <kj/map.h>
#include <fstream>
#include <stdlib.h>
#include <sstream>
#include <sys/stat.h>

namespace nb {

namespace {

const kj::StringPtr INSTANCE_KEYS[] = {"impl", "placement", "restart", "boundary", "uses"};
const kj::StringPtr HW_KEYS[] = {"name", "placement", "restart", "boundary", "uses"};
const kj::StringPtr TIMING_KEYS[] = {"profile", "costs"};
const kj::StringPtr MEMORY_KEYS[] = {"base", "size", "file", "overwrite"};

std::string_view sv(kj::StringPtr s) { return std::string_view(s.begin(), s.size()); }
kj::String ks(std::string_view s) { return kj::heapString(s.data(), s.size()); }

size_t editDistance(kj::StringPtr a, kj::StringPtr b) {
  kj::Vector<size_t> prev, cur;
  for (size_t j = 0; j <= b.size(); j++) prev.add(j);
  for (size_t i = 1; i <= a.size(); i++) {
    cur.clear();
    cur.add(i);
    for (size_t j = 1; j <= b.size(); j++) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur.add(kj::min(sub, kj::min(prev[j] + 1, cur[j - 1] + 1)));
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

kj::String suggestion(kj::StringPtr key, kj::ArrayPtr<const kj::StringPtr> known) {
  kj::Maybe<kj::StringPtr> best;
  size_t bestDist = 3;
  for (auto k : known) {
    size_t d = editDistance(key, k);
    if (d < bestDist) { bestDist = d; best = k; }
  }
  KJ_IF_MAYBE(b, best) { return kj::str(" (did you mean '", *b, "'?)"); }
  return kj::str();
}

class Validator {
public:
  Validator(kj::StringPtr path, const Registry& registry) : path_(path), registry_(registry) {}

  SourcePos posOf(const toml::source_region& src) {
    if (src.begin.line == 0) return SourcePos{kj::str("--set"), 0, 0};
    return SourcePos{kj::heapString(path_), src.begin.line, src.begin.column};
  }
  SourcePos posOf(const toml::node& node) { return posOf(node.source()); }

  void error(SourcePos pos, kj::StringPtr key, kj::String message) {
    errors_.add(ManifestError{kj::mv(pos), kj::heapString(key), kj::mv(message)});
  }

  kj::Vector<ManifestError> errors_;
  kj::Maybe<MemoryRange> memory_;  // [memory], once it validated: for settings validators

  kj::Maybe<MemoryPlan> memory(const toml::table& root) {
    auto node = root.get("memory");
    if (node == nullptr) {
      error(SourcePos{kj::heapString(path_), 1, 1}, "memory", kj::str("missing required table [memory]"));
      return nullptr;
    }
    auto table = node->as_table();
    if (table == nullptr) {
      error(posOf(*node), "memory", kj::str("must be a table"));
      return nullptr;
    }
    checkKeys(*table, "memory", MEMORY_KEYS);
    MemoryPlan plan{0, 0, nullptr};
    bool ok = true;
    KJ_IF_MAYBE(b, sizeValue(*table, "memory", "base", true)) { plan.base = *b; } else { ok = false; }
    KJ_IF_MAYBE(s, sizeValue(*table, "memory", "size", true)) { plan.size = *s; } else { ok = false; }
    if (ok) {
      if (plan.base % 4096 != 0) error(posOf(*table->get("base")), "memory.base", kj::str("must be 4 KiB aligned"));
      if (plan.size == 0 || plan.size % 4096 != 0) {
        error(posOf(*table->get("size")), "memory.size", kj::str("must be a non-zero multiple of 4 KiB"));
      }
      if (plan.base + plan.size < plan.base) {
        error(posOf(*table->get("size")), "memory.size", kj::str("range wraps past 2^64"));
      }
    }
    if (auto f = table->get("file")) {
      if (auto s = f->value<std::string>()) {
        // A relative path is relative to where the command was typed: under `bazel run`,
        // BUILD_WORKING_DIRECTORY, not the runfiles tree nestbed runs in.
        const char* wd = getenv("BUILD_WORKING_DIRECTORY");
        plan.file = s->size() > 0 && (*s)[0] != '/' && wd != nullptr && *wd != '\0'
                        ? kj::str(wd, "/", ks(*s))
                        : ks(*s);
      } else {
        error(posOf(*f), "memory.file", kj::str("must be a string (a path)"));
      }
    }
    bool overwrite = false;
    if (auto o = table->get("overwrite")) {
      if (auto b = o->value<bool>()) {
        overwrite = *b;
      } else {
        error(posOf(*o), "memory.overwrite", kj::str("must be true or false"));
      }
    }
    KJ_IF_MAYBE(path, plan.file) {
      // The backing file is sized and zeroed: an existing one is replaced only when asked.
      struct stat st;
      if (!overwrite && stat(path->cStr(), &st) == 0) {
        error(posOf(*table->get("file")), "memory.file",
              kj::str("'", *path, "' exists; set memory.overwrite = true to replace its contents"));
      }
    }
    if (!ok) return nullptr;
    return kj::mv(plan);
  }

  void checkKeys(const toml::table& table, kj::StringPtr prefix,
                 kj::ArrayPtr<const kj::StringPtr> known) {
    for (auto&& [k, v] : table) {
      kj::StringPtr key(k.str().data(), k.str().size());
      bool found = false;
      for (auto n : known) found = found || n == key;
      if (!found) {
        // toml::key is not null-terminated in general: copy it.
        auto keyStr = ks(k.str());
        error(posOf(k.source()), kj::str(prefix, ".", keyStr),
              kj::str("unknown key '", keyStr, "'", suggestion(keyStr, known)));
      }
    }
  }

  kj::Maybe<uint64_t> sizeValue(const toml::table& table, kj::StringPtr prefix, kj::StringPtr key,
                                bool required) {
    auto node = table.get(sv(key));
    auto full = kj::str(prefix, ".", key);
    if (node == nullptr) {
      if (required) error(posOf(table), full, kj::str("missing required key '", key, "'"));
      return nullptr;
    }
    if (auto i = node->value<int64_t>()) {
      if (*i >= 0) return uint64_t(*i);
    } else if (auto s = node->value<std::string>()) {
      KJ_IF_MAYBE(v, parseSize(kj::StringPtr(s->c_str()))) { return *v; }
    }
    error(posOf(*node), full, kj::str("must be a byte size: an integer or a string like \"256MiB\" "
                                      "(binary units; \"256MB\" is refused as ambiguous)"));
    return nullptr;
  }

  // [timing]: the cost profile and its overrides. `dir` is the manifest's directory (a profile
  // path is relative to it).
  kj::Maybe<TimingPlan> timing(const toml::table& root, kj::StringPtr dir) {
    kj::String name = kj::str(DEFAULT_PROFILE);
    SourcePos namePos{kj::heapString(path_), 1, 1};
    const toml::table* overrides = nullptr;
    if (auto node = root.get("timing")) {
      auto table = node->as_table();
      if (table == nullptr) {
        error(posOf(*node), "timing", kj::str("must be a table"));
        return nullptr;
      }
      checkKeys(*table, "timing", TIMING_KEYS);
      if (auto p = table->get("profile")) {
        if (auto s = p->value<std::string>()) {
          name = ks(*s);
          namePos = posOf(*p);
        } else {
          error(posOf(*p), "timing.profile", kj::str("must be a string: a profile name or a path"));
          return nullptr;
        }
      }
      if (auto c = table->get("costs")) {
        overrides = c->as_table();
        if (overrides == nullptr) {
          error(posOf(*c), "timing.costs", kj::str("must be a table: [timing.costs] key = ns"));
          return nullptr;
        }
      }
    }
    if (name == "off") {
      TimingPlan off;
      off.profile.name = kj::str("off");
      off.origin = kj::str("timing off");
      off.enabled = false;
      return kj::mv(off);
    }
    // A shipped profile by name, or a file.
    kj::String text, origin;
    bool isPath = name.endsWith(".toml") || name.findFirst('/') != nullptr;
    if (!isPath) {
      KJ_IF_MAYBE(t, shippedProfileText(name)) {
        text = kj::heapString(*t);
        origin = kj::str("shipped");
      } else {
        error(kj::mv(namePos), "timing.profile",
              kj::str("unknown profile '", name, "'", suggestion(name, shippedProfileNames()),
                      "; shipped: ", kj::strArray(shippedProfileNames(), ", "),
                      " (or give a path to a .toml file, or \"off\")"));
        return nullptr;
      }
    } else {
      auto file = name.startsWith("/") ? kj::heapString(name) : kj::str(dir, name);
      std::ifstream in(file.cStr());
      if (!in) {
        error(kj::mv(namePos), "timing.profile",
              kj::str("cannot read profile '", file, "': ", strerror(errno)));
        return nullptr;
      }
      std::stringstream buf;
      buf << in.rdbuf();
      text = kj::str(buf.str().c_str());
      origin = kj::mv(file);
    }
    auto parsed = parseCostProfile(text, origin == "shipped" ? kj::str("system/costs/", name, ".toml")
                                                             : kj::heapString(origin));
    KJ_SWITCH_ONEOF(parsed) {
      KJ_CASE_ONEOF(errs, kj::Array<ProfileError>) {
        for (auto& e : errs) {
          error(SourcePos{kj::heapString(e.file), e.line, e.column}, e.key, kj::heapString(e.message));
        }
        return nullptr;
      }
      KJ_CASE_ONEOF(profile, CostProfile) {
        if (overrides != nullptr) {
          for (auto&& [k, v] : *overrides) {
            auto key = ks(k.str());
            auto full = kj::str("timing.costs.", key);
            KJ_IF_MAYBE(c, costFromKey(key)) {
              auto n = v.value<int64_t>();
              if (!v.is_integer() || !n) {
                error(posOf(v), full, kj::str("must be an integer number of nanoseconds"));
              } else if (*n < 0) {
                error(posOf(v), full, kj::str("must not be negative (", *n, ")"));
              } else {
                auto& cost = profile.costs[uint(*c)];
                cost.ns = uint64_t(*n);
                cost.status = kj::str("override");
                cost.source = kj::str("set by ", posOf(v).file, ":", posOf(v).line);
              }
            } else {
              kj::Vector<kj::StringPtr> keys;
              for (size_t i = 0; i < COST_CLASSES; i++) keys.add(costKey(Cost(i)));
              error(posOf(k.source()), full, kj::str("unknown cost '", key, "'", suggestion(key, keys)));
            }
          }
        }
        return TimingPlan{kj::mv(profile), kj::mv(origin), true};
      }
    }
    KJ_UNREACHABLE;
  }

  // The common keys of an instance table; `known` are the reserved keys of its kind.
  kj::Maybe<InstancePlan> instance(const toml::table& table, kj::StringPtr name,
                                   kj::StringPtr impl, kj::StringPtr prefix,
                                   kj::ArrayPtr<const kj::StringPtr> reserved) {
    auto maybeType = registry_.find(impl);
    const ComponentType* type = nullptr;
    KJ_IF_MAYBE(t, maybeType) { type = &*t; }
    if (type == nullptr) {
      auto names = registry_.names();
      auto implNode = table.get("impl");
      error(posOf(implNode ? *implNode : static_cast<const toml::node&>(table)), kj::str(prefix, ".impl"),
            kj::str("unknown implementation '", impl, "'", suggestion(impl, names),
                    "; known: ", kj::strArray(names, ", ")));
      return nullptr;
    }

    InstancePlan plan{kj::heapString(name), kj::heapString(impl), type, Placement::INLINE,
                      Restart::NEVER, type->isHardware ? Boundary::NONE : Boundary::CALL, {}, {},
                      posOf(table)};

    if (auto b = table.get("boundary")) {
      auto s = b->value<std::string>();
      kj::Maybe<Boundary> parsed = nullptr;
      if (s) parsed = boundaryFromName(ks(*s));
      KJ_IF_MAYBE(p, parsed) {
        plan.boundary = *p;
      } else {
        error(posOf(*b), kj::str(prefix, ".boundary"),
              kj::str("must be \"call\", \"ipc\", \"hypercall\", \"process\" or \"none\""));
      }
    }

    if (auto p = table.get("placement")) {
      auto s = p->value<std::string>();
      if (s && *s == "inline") plan.placement = Placement::INLINE;
      else if (s && *s == "process") plan.placement = Placement::PROCESS;
      else error(posOf(*p), kj::str(prefix, ".placement"), kj::str("must be \"inline\" or \"process\""));
    }
    if (auto r = table.get("restart")) {
      auto s = r->value<std::string>();
      if (s && *s == "never") plan.restart = Restart::NEVER;
      else if (s && *s == "on-failure") plan.restart = Restart::ON_FAILURE;
      else error(posOf(*r), kj::str(prefix, ".restart"), kj::str("must be \"never\" or \"on-failure\""));
      if (plan.restart == Restart::ON_FAILURE && plan.placement == Placement::INLINE) {
        error(posOf(*r), kj::str(prefix, ".restart"),
              kj::str("\"on-failure\" needs placement = \"process\" (an inline component cannot "
                      "fail apart from the composer)"));
      } else if (plan.restart == Restart::ON_FAILURE && type->recovery == Recovery::NONE) {
        // A new process without the old one's state would answer callers as if nothing had
        // happened (a device claimed twice, a stage 2 no longer following its VM).
        error(posOf(*r), kj::str(prefix, ".restart"),
              kj::str("\"on-failure\" needs an implementation that recovers its state; ",
                      type->name, " keeps it only in its process, so a restarted one would "
                      "answer as if it had never died. With restart = \"never\" its death "
                      "fails every step that needs it, naming it"));
      }
    }
    if (auto u = table.get("uses")) {
      if (auto ut = u->as_table()) {
        for (auto&& [k, v] : *ut) {
          auto role = ks(k.str());
          auto roleKey = kj::str(prefix, ".uses.", role);
          const RoleSpec* spec = nullptr;
          for (auto& r : type->roles) if (r.role == role) spec = &r;
          if (spec == nullptr) {
            kj::Vector<kj::StringPtr> roles;
            for (auto& r : type->roles) roles.add(r.role);
            error(posOf(k.source()), roleKey,
                  kj::str("'", impl, "' has no role '", role, "'", suggestion(role, roles),
                          roles.size() ? kj::str("; roles: ", kj::strArray(roles, ", ")) : kj::str("; it uses nothing")));
            continue;
          }
          if (!spec->list) {
            auto target = v.value<std::string>();
            if (!target) {
              error(posOf(v), roleKey, kj::str("must be an instance name (a string)"));
              continue;
            }
            addWire(plan, kj::mv(role), ks(*target), posOf(v), kj::mv(roleKey));
            continue;
          }
          // A list role: an array of distinct instance names, kept in order.
          auto array = v.as_array();
          if (array == nullptr) {
            error(posOf(v), roleKey,
                  kj::str("role '", role, "' takes a list of instance names: ", role, " = [\"a\", \"b\"]"));
            continue;
          }
          for (size_t i = 0; i < array->size(); i++) {
            auto& element = *array->get(i);
            auto elementKey = kj::str(roleKey, ".", i);
            auto target = element.value<std::string>();
            if (!target) {
              error(posOf(element), elementKey, kj::str("must be an instance name (a string)"));
              continue;
            }
            bool duplicate = false;
            for (auto& w : plan.uses) duplicate = duplicate || (w.role == role && w.target == ks(*target));
            if (duplicate) {
              error(posOf(element), elementKey, kj::str("'", ks(*target), "' is listed twice"));
              continue;
            }
            addWire(plan, kj::heapString(role), ks(*target), posOf(element), kj::mv(elementKey));
          }
        }
      } else {
        error(posOf(*u), kj::str(prefix, ".uses"), kj::str("must be a table: uses = { role = \"instance\" }"));
      }
    }
    for (auto& r : type->roles) {
      bool wired = false;
      for (auto& w : plan.uses) wired = wired || w.role == r.role;
      if (r.required && !wired) {
        error(posOf(table), kj::str(prefix, ".uses"),
              kj::str("missing required role '", r.role, "' (", r.doc, ")"));
      }
    }

    // Own settings: everything that is not a reserved key.
    kj::Vector<kj::StringPtr> known;
    for (auto k : reserved) known.add(k);
    for (auto& s : type->settings) known.add(s.key);
    for (auto&& [k, v] : table) {
      auto key = ks(k.str());
      bool isReserved = false;
      for (auto r : reserved) isReserved = isReserved || r == key;
      if (isReserved) continue;
      const SettingSpec* spec = nullptr;
      for (auto& s : type->settings) if (s.key == key) spec = &s;
      if (spec == nullptr) {
        error(posOf(k.source()), kj::str(prefix, ".", key),
              kj::str("unknown key '", key, "' for '", impl, "'", suggestion(key, known)));
        continue;
      }
      if (checkSetting(*spec, v, kj::str(prefix, ".", key))) {
        plan.settings.insert(k, v);
      }
    }
    for (auto& s : type->settings) {
      if (s.required && !table.contains(sv(s.key))) {
        error(posOf(table), kj::str(prefix, ".", s.key), kj::str("missing required key '", s.key, "'"));
      }
    }
    return kj::mv(plan);
  }

  // One wire of `plan`, remembering where it was written (for wiring errors found later).
  void addWire(InstancePlan& plan, kj::String role, kj::String target, SourcePos pos, kj::String key) {
    // upsert: a duplicate instance name (reported elsewhere) must not abort validation.
    usePos_.upsert(kj::str(plan.name, ".", plan.uses.size()), WirePos{kj::mv(pos), kj::mv(key)},
                   [](WirePos& a, WirePos&& b) { a = kj::mv(b); });
    plan.uses.add(Wire{kj::mv(role), kj::mv(target)});
  }

  bool checkSetting(const SettingSpec& spec, const toml::node& v, kj::StringPtr key) {
    if (!checkSettingType(spec, v, key)) return false;
    if (spec.validate == nullptr) return true;
    struct Sink final : public SettingErrors {
      Validator& v;
      kj::StringPtr key;
      size_t count = 0;
      Sink(Validator& v, kj::StringPtr key) : v(v), key(key) {}
      void error(const toml::node& at, kj::StringPtr suffix, kj::String message) override {
        v.error(v.posOf(at), kj::str(key, suffix), kj::mv(message));
        count++;
      }
      kj::Maybe<MemoryRange> memory() override { return v.memory_; }
    } sink(*this, key);
    spec.validate(v, sink);
    return sink.count == 0;
  }

  bool checkSettingType(const SettingSpec& spec, const toml::node& v, kj::StringPtr key) {
    switch (spec.type) {
      case SettingType::ARRAY:
        if (v.is_array()) return true;
        error(posOf(v), key, kj::str("must be an array"));
        return false;
      case SettingType::TABLE:
        if (v.is_table()) return true;
        error(posOf(v), key, kj::str("must be a table"));
        return false;
      case SettingType::INTEGER:
        if (v.is_integer()) return true;
        error(posOf(v), key, kj::str("must be an integer"));
        return false;
      case SettingType::BOOLEAN:
        if (v.is_boolean()) return true;
        error(posOf(v), key, kj::str("must be true or false"));
        return false;
      case SettingType::STRING:
        if (v.is_string()) return true;
        error(posOf(v), key, kj::str("must be a string"));
        return false;
      case SettingType::CHOICE: {
        if (auto s = v.value<std::string>()) {
          for (auto c : spec.choices) if (c == kj::StringPtr(s->c_str())) return true;
        }
        kj::Vector<kj::String> quoted;
        for (auto c : spec.choices) quoted.add(kj::str('"', c, '"'));
        error(posOf(v), key, kj::str("must be one of ", kj::strArray(quoted, ", ")));
        return false;
      }
      case SettingType::SIZE:
        if (auto i = v.value<int64_t>()) {
          if (*i >= 0) return true;
        } else if (auto s = v.value<std::string>()) {
          if (parseSize(kj::StringPtr(s->c_str())) != nullptr) return true;
        }
        error(posOf(v), key, kj::str("must be a byte size: an integer or a string like \"64KiB\""));
        return false;
    }
    KJ_UNREACHABLE;
  }

  // Checks wiring targets and interfaces, then orders instances so each follows what it uses.
  kj::Vector<InstancePlan> order(kj::Vector<InstancePlan> instances) {
    kj::HashMap<kj::StringPtr, size_t> index;
    for (auto i : kj::indices(instances)) index.insert(instances[i].name, i);
    bool wiringOk = true;
    for (auto& inst : instances) {
      for (auto wi : kj::indices(inst.uses)) {
        auto& w = inst.uses[wi];
        auto& wirePos = KJ_ASSERT_NONNULL(usePos_.find(kj::str(inst.name, ".", wi)));
        auto pos = kj::mv(wirePos.pos);
        auto key = kj::mv(wirePos.key);
        KJ_IF_MAYBE(t, index.find(w.target)) {
          auto& target = instances[*t];
          const RoleSpec* role = nullptr;
          for (auto& r : inst.type->roles) if (r.role == w.role) role = &r;
          if (role != nullptr && role->interface != target.type->interface) {
            error(kj::mv(pos), key,
                  kj::str("'", w.target, "' (", target.impl, ") does not serve the interface role '",
                          w.role, "' needs"));
            wiringOk = false;
          }
        } else {
          kj::Vector<kj::StringPtr> names;
          for (auto& i : instances) names.add(i.name);
          error(kj::mv(pos), key,
                kj::str("no instance named '", w.target, "'", suggestion(w.target, names)));
          wiringOk = false;
        }
      }
    }
    if (!wiringOk) return kj::mv(instances);

    // Depth-first topological sort; a back edge is a cycle, reported with its path.
    enum State : uint8_t { NEW, VISITING, DONE };
    kj::Vector<State> state;
    state.resize(instances.size());
    for (auto& s : state) s = NEW;
    kj::Vector<size_t> ordered, stack;
    bool cyclic = false;
    kj::Function<void(size_t)> visit = [&](size_t i) {
      if (state[i] == DONE || cyclic) return;
      if (state[i] == VISITING) {
        kj::Vector<kj::StringPtr> path;
        bool on = false;
        for (auto s : stack) {
          if (s == i) on = true;
          if (on) path.add(instances[s].name);
        }
        path.add(instances[i].name);
        auto& from = instances[stack.back()];
        error(posOf(from), kj::str(keyPrefix(from), ".uses"),
              kj::str("wiring cycle: ", kj::strArray(path, " -> ")));
        cyclic = true;
        return;
      }
      state[i] = VISITING;
      stack.add(i);
      for (auto& w : instances[i].uses) visit(KJ_ASSERT_NONNULL(index.find(w.target)));
      stack.removeLast();
      state[i] = DONE;
      ordered.add(i);
    };
    for (auto i : kj::indices(instances)) visit(i);
    if (cyclic) return kj::mv(instances);

    kj::Vector<InstancePlan> out;
    for (auto i : ordered) out.add(kj::mv(instances[i]));
    return out;
  }

  static kj::String keyPrefix(const InstancePlan& inst) {
    return inst.type->isHardware ? kj::str("hw.", inst.name) : kj::str("components.", inst.name);
  }

  SourcePos posOf(const InstancePlan& inst) {
    return SourcePos{kj::heapString(inst.pos.file), inst.pos.line, inst.pos.column};
  }

private:
  kj::StringPtr path_;
  const Registry& registry_;
  struct WirePos {
    SourcePos pos;
    kj::String key;   // "components.x.uses.role", or "...uses.role.2" for a list element
  };
  kj::HashMap<kj::String, WirePos> usePos_;   // by "<instance>.<index in InstancePlan::uses>"
};

// Applies one override to the parsed document. Instances are addressed by name:
// `components.<name>.<key>`, `hw.<name>.<key>`, `memory.<key>`; a hardware entry also by its
// place in the TOML array of tables, `hw.<model>.<index>.<key>` (`hw.smmuv3.0.iotlb_entries`).
kj::Maybe<kj::String> applyOverride(toml::table& root, const Override& o) {
  auto parts = kj::Vector<kj::String>();
  size_t start = 0;
  for (size_t i = 0; i <= o.key.size(); i++) {
    if (i == o.key.size() || o.key[i] == '.') {
      parts.add(kj::heapString(o.key.slice(start, i)));
      start = i + 1;
    }
  }
  toml::table* target = nullptr;
  kj::StringPtr leaf;
  if (parts.size() == 2 && parts[0] == "memory") {
    target = root["memory"].as_table();
    leaf = parts[1];
  } else if (parts.size() == 2 && parts[0] == "timing") {
    if (!root.contains("timing")) root.insert("timing", toml::table{});
    target = root["timing"].as_table();
    leaf = parts[1];
  } else if (parts.size() == 3 && parts[0] == "timing" && parts[1] == "costs") {
    if (!root.contains("timing")) root.insert("timing", toml::table{});
    auto t = root["timing"].as_table();
    if (t != nullptr && !t->contains("costs")) t->insert("costs", toml::table{});
    target = t ? (*t)["costs"].as_table() : nullptr;
    leaf = parts[2];
  } else if (parts.size() == 3 && parts[0] == "components") {
    if (auto c = root["components"].as_table()) target = (*c)[sv(parts[1])].as_table();
    leaf = parts[2];
  } else if (parts.size() == 3 && parts[0] == "hw") {
    if (auto hw = root["hw"].as_table()) {
      for (auto&& [kind, arr] : *hw) {
        if (auto a = arr.as_array()) {
          for (auto& e : *a) {
            auto t = e.as_table();
            if (t && (*t)["name"].value<std::string>() == std::string(parts[1].cStr())) target = t;
          }
        }
      }
    }
    leaf = parts[2];
  } else if (parts.size() == 4 && parts[0] == "hw") {
    auto hw = root["hw"].as_table();
    auto entries = hw ? (*hw)[sv(parts[1])].as_array() : nullptr;
    if (entries == nullptr) return kj::str("no [[hw.", parts[1], "]] in the manifest");
    char* end = nullptr;
    auto index = strtoul(parts[2].cStr(), &end, 10);
    if (parts[2].size() == 0 || *end != '\0') {
      return kj::str("'", parts[2], "' is not an index into [[hw.", parts[1], "]]");
    }
    if (index >= entries->size()) {
      return kj::str("[[hw.", parts[1], "]] has ", entries->size(), " entries; no entry ", index);
    }
    target = entries->get(index)->as_table();
    leaf = parts[3];
  } else {
    return kj::str("key must be memory.<key>, timing.profile, timing.costs.<cost>, "
                   "components.<instance>.<key>, hw.<instance>.<key> or hw.<model>.<index>.<key>");
  }
  if (target == nullptr) return kj::str("no such table in the manifest");
  toml::table parsed;
  try {
    std::string doc = std::string("v = ") + o.value.cStr();
    parsed = toml::parse(std::string_view(doc), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", std::string(o.value.cStr())}};  // a bare word is a string
  }
  // Overridden values carry no source position: errors about them name "--set".
  toml::node& v = *parsed.get("v");
  v.visit([&](auto& n) {
    using T = std::remove_cvref_t<decltype(n)>;
    T copy(n);
    target->insert_or_assign(sv(leaf), std::move(copy));
  });
  return nullptr;
}

}  // namespace

kj::String KJ_STRINGIFY(const ManifestError& e) {
  if (e.pos.line == 0) return kj::str(e.pos.file, ": ", e.key, ": ", e.message);
  return kj::str(e.pos.file, ":", e.pos.line, ":", e.pos.column, ": ", e.key, ": ", e.message);
}

kj::Maybe<Override> parseOverride(kj::StringPtr text) {
  KJ_IF_MAYBE(eq, text.findFirst('=')) {
    if (*eq == 0) return nullptr;
    return Override{kj::heapString(text.slice(0, *eq)), kj::heapString(text.slice(*eq + 1))};
  }
  return nullptr;
}

kj::Maybe<const InstancePlan&> Plan::find(kj::StringPtr name) const {
  for (auto& i : instances) if (i.name == name) return i;
  return nullptr;
}

kj::StringPtr placementName(Placement p) { return p == Placement::INLINE ? "inline" : "process"; }

ManifestResult loadManifest(kj::StringPtr path, const Registry& registry,
                            kj::ArrayPtr<const Override> overrides) {
  std::ifstream in(path.cStr());
  if (!in) {
    auto errors = kj::heapArrayBuilder<ManifestError>(1);
    errors.add(ManifestError{SourcePos{kj::heapString(path), 0, 0}, kj::str("manifest"),
                             kj::str("cannot read file: ", strerror(errno))});
    return errors.finish();
  }
  // Bounded before reading: a manifest is a few KiB of TOML, not an arbitrary file.
  in.seekg(0, std::ios::end);
  auto bytes = in.tellg();
  in.seekg(0, std::ios::beg);
  if (bytes > std::streamoff(MAX_MANIFEST_BYTES)) {
    auto errors = kj::heapArrayBuilder<ManifestError>(1);
    errors.add(ManifestError{SourcePos{kj::heapString(path), 0, 0}, kj::str("manifest"),
                             kj::str("too large: ", uint64_t(bytes), " bytes is more than the limit of ",
                                     MAX_MANIFEST_BYTES, " bytes")});
    return errors.finish();
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto text = buf.str();
  // A NUL byte would silently end the text the TOML parser sees: refuse it, naming where.
  auto nul = text.find('\0');
  if (nul != std::string::npos) {
    uint32_t line = 1, column = 1;
    for (size_t i = 0; i < nul; i++) {
      if (text[i] == '\n') {
        line++;
        column = 1;
      } else {
        column++;
      }
    }
    auto errors = kj::heapArrayBuilder<ManifestError>(1);
    errors.add(ManifestError{SourcePos{kj::heapString(path), line, column}, kj::str("manifest"),
                             kj::str("a NUL byte (a binary file?): a manifest is TOML text")});
    return errors.finish();
  }
  return parseManifest(kj::StringPtr(text.c_str()), path, registry, overrides);
}

ManifestResult parseManifest(kj::StringPtr text, kj::StringPtr path, const Registry& registry,
                             kj::ArrayPtr<const Override> overrides) {
  Validator v(path, registry);
  if (text.size() > MAX_MANIFEST_BYTES) {
    v.error(SourcePos{kj::heapString(path), 0, 0}, "manifest",
            kj::str("too large: ", text.size(), " bytes is more than the limit of ",
                    MAX_MANIFEST_BYTES, " bytes"));
    return v.errors_.releaseAsArray();
  }
  toml::table root;
  try {
    root = toml::parse(sv(text), sv(path));
  } catch (const toml::parse_error& e) {
    v.error(v.posOf(e.source()), "", kj::str("TOML syntax error: ", ks(e.description())));
    return v.errors_.releaseAsArray();
  }
  for (auto& o : overrides) {
    KJ_IF_MAYBE(err, applyOverride(root, o)) {
      v.error(SourcePos{kj::str("--set"), 0, 0}, o.key, kj::mv(*err));
    }
  }

  static const kj::StringPtr TOP_KEYS[] = {"memory", "timing", "hw", "components"};
  for (auto&& [k, node] : root) {
    auto key = ks(k.str());
    bool known = false;
    for (auto t : TOP_KEYS) known = known || t == key;
    if (!known) v.error(v.posOf(k.source()), key, kj::str("unknown top-level table '", key, "'", suggestion(key, TOP_KEYS)));
  }

  auto memory = v.memory(root);
  KJ_IF_MAYBE(m, memory) { v.memory_ = MemoryRange{m->base, m->size}; }
  kj::String dir;
  KJ_IF_MAYBE(slash, path.findLast('/')) { dir = kj::heapString(path.slice(0, *slash + 1)); }
  else { dir = kj::str(); }
  auto timing = v.timing(root, dir);
  kj::Vector<InstancePlan> instances;
  kj::HashMap<kj::String, SourcePos> seen;
  auto addInstance = [&](kj::Maybe<InstancePlan> p) {
    KJ_IF_MAYBE(plan, p) {
      if (plan->name == "memory") {
        v.error(v.posOf(*plan), plan->name, kj::str("instance name 'memory' is reserved for hw/mem"));
        return;
      }
      KJ_IF_MAYBE(prev, seen.find(plan->name)) {
        v.error(v.posOf(*plan), plan->name,
                kj::str("instance name '", plan->name, "' already used at line ", prev->line));
        return;
      }
      seen.insert(kj::heapString(plan->name), v.posOf(*plan));
      instances.add(kj::mv(*plan));
    }
  };

  if (auto hw = root.get("hw")) {
    if (auto hwt = hw->as_table()) {
      for (auto&& [kindKey, arr] : *hwt) {
        auto kind = ks(kindKey.str());
        auto a = arr.as_array();
        if (a == nullptr) {
          v.error(v.posOf(arr), kj::str("hw.", kind), kj::str("must be an array of tables: [[hw.", kind, "]]"));
          continue;
        }
        for (auto& e : *a) {
          auto t = e.as_table();
          if (t == nullptr) {
            v.error(v.posOf(e), kj::str("hw.", kind), kj::str("entries must be tables"));
            continue;
          }
          auto name = (*t)["name"].value<std::string>();
          if (!name) {
            v.error(v.posOf(*t), kj::str("hw.", kind, ".name"), kj::str("missing required key 'name'"));
            continue;
          }
          addInstance(v.instance(*t, ks(*name), kj::str("hw/", kind), kj::str("hw.", ks(*name)), HW_KEYS));
        }
      }
    } else {
      v.error(v.posOf(*hw), "hw", kj::str("must be a table of [[hw.<model>]] arrays"));
    }
  }
  if (auto comps = root.get("components")) {
    if (auto ct = comps->as_table()) {
      for (auto&& [nameKey, node] : *ct) {
        auto name = ks(nameKey.str());
        auto prefix = kj::str("components.", name);
        auto t = node.as_table();
        if (t == nullptr) {
          v.error(v.posOf(node), prefix, kj::str("must be a table: [components.", name, "]"));
          continue;
        }
        auto impl = (*t)["impl"].value<std::string>();
        if (!impl) {
          v.error(v.posOf(*t), kj::str(prefix, ".impl"), kj::str("missing required key 'impl'"));
          continue;
        }
        addInstance(v.instance(*t, name, ks(*impl), prefix, INSTANCE_KEYS));
      }
    } else {
      v.error(v.posOf(*comps), "components", kj::str("must be a table of [components.<name>] tables"));
    }
  }

  auto ordered = v.order(kj::mv(instances));
  if (!v.errors_.empty()) return v.errors_.releaseAsArray();
  std::ostringstream effective;
  effective << root;
  return Plan{kj::heapString(path), ks(effective.str()), kj::mv(KJ_ASSERT_NONNULL(memory)),
              kj::mv(KJ_ASSERT_NONNULL(timing)), kj::mv(ordered)};
}

kj::String formatPlan(const Plan& plan) {
  kj::Vector<kj::String> lines;
  lines.add(kj::str("manifest ", plan.file));
  lines.add(kj::str("memory   base 0x", kj::hex(plan.memory.base), " size ",
                    formatSize(plan.memory.size),
                    plan.memory.file.map([](const kj::String& f) { return kj::str(" file ", f); })
                        .orDefault(kj::str(" (anonymous memfd)"))));
  lines.add(kj::str("timing   profile ", plan.timing.profile.name, " (", plan.timing.origin, ")"));
  lines.add(kj::str("start order:"));
  for (auto i : kj::indices(plan.instances)) {
    auto& inst = plan.instances[i];
    kj::Vector<kj::String> wires;
    for (auto& w : inst.uses) wires.add(kj::str(w.role, "=", w.target));
    lines.add(kj::str("  ", i + 1, ". ", inst.name, "  ", inst.impl, "  ", placementName(inst.placement),
                      inst.restart == Restart::ON_FAILURE ? "  restart=on-failure" : "",
                      inst.boundary != (inst.type->isHardware ? Boundary::NONE : Boundary::CALL)
                          ? kj::str("  boundary=", boundaryName(inst.boundary)) : kj::str(),
                      wires.size() ? kj::str("  uses ", kj::strArray(wires, ", ")) : kj::str()));
  }
  return kj::str(kj::strArray(lines, "\n"), "\n");
}

kj::String planToDot(const Plan& plan) {
  kj::Vector<kj::String> out;
  out.add(kj::str("digraph nestbed {"));
  out.add(kj::str("  rankdir=BT;"));
  out.add(kj::str("  node [fontname=\"Helvetica\", fontsize=11];"));
  out.add(kj::str("  memory [shape=cylinder, label=\"memory\\n0x", kj::hex(plan.memory.base), " +",
                  formatSize(plan.memory.size), "\"];"));
  for (auto& inst : plan.instances) {
    bool proc = inst.placement == Placement::PROCESS;
    out.add(kj::str("  \"", inst.name, "\" [shape=", inst.type->isHardware ? "box3d" : "box",
                    ", style=\"", proc ? "bold,filled" : "filled", "\", fillcolor=\"",
                    inst.type->isHardware ? "#e8e8e8" : (proc ? "#cfe2ff" : "#ffffff"),
                    "\", label=\"", inst.name, "\\n", inst.impl, "\\n", placementName(inst.placement), "\"];"));
    out.add(kj::str("  \"", inst.name, "\" -> memory [style=dotted, arrowhead=none];"));
  }
  for (auto& inst : plan.instances) {
    for (auto& w : inst.uses) {
      out.add(kj::str("  \"", inst.name, "\" -> \"", w.target, "\" [label=\"", w.role, "\"];"));
    }
  }
  out.add(kj::str("}"));
  return kj::str(kj::strArray(out, "\n"), "\n");
}

}  // namespace nb
