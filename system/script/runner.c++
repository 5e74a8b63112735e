// The scenario runner. See runner.h.

#include "system/script/runner.h"

#include "interfaces/domain.capnp.h"
#include "interfaces/smmu-queue.capnp.h"
#include "system/guest/guest-driver.h"
#include "system/guest/guest-queue.h"
#include "system/script/commands.h"
#include "util/suggest.h"
#include "util/text-bounds.h"

#include <capnp/message.h>
#include <capnp/serialize-text.h>
#include <kj/debug.h>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <chrono>

namespace nb {

// One step of the scenario tree, with its source line and what happened when it ran.
struct ScenarioRunner::Node {
  rpc::Step::Reader step;
  uint32_t line;
  uint8_t depth;
  kj::Vector<kj::Own<Node>> children;

  // Results, accumulated over repeat iterations.
  bool ok = true;
  double micros = 0;
  ModeledClock::Totals modeled;   // accumulated over iterations
  uint32_t iterations = 0;
  struct Failure {
    kj::String what, expected, actual;
    uint32_t iteration;
  };
  kj::Vector<Failure> failures;
  // Counter changes by counter index (Impl::counterKeys), summed over iterations; leaf steps.
  kj::Vector<int64_t> deltas;
  struct Record {
    kj::String name, value;
    uint32_t iteration;
  };
  kj::Vector<Record> records;
};

namespace {

using Node = ScenarioRunner::Node;

constexpr size_t MAX_FAILURES_PER_STEP = 8;

// ======================================================================================
// Typed steps: a call whose parameters are typed in interfaces/scenario.capnp. Every field of
// the step's struct except `target` is copied by name into the method's parameters.

struct TypedStep {
  kj::StringPtr field;    // the Step union member
  kj::StringPtr target;   // the field naming the instance or saved capability to call
  kj::StringPtr method;
  kj::StringPtr result;   // what `saveAs` and `expect.value` see ("" = the whole results)
};

const TypedStep TYPED_STEPS[] = {
    {"createTable", "engine", "create", "table"},
    {"map", "table", "map", ""},
    {"unmap", "table", "unmap", ""},
    {"lookup", "table", "iovaToPhys", "pa"},
    {"dma", "endpoint", "dma", "data"},
    {"mmioRead", "smmu", "read", "value"},
    {"mmioWrite", "smmu", "write", ""},
    {"submit", "queue", "submit", "result"},
    {"allocViommu", "queue", "allocViommu", "viommu"},
    {"addVdevice", "viommu", "addVdevice", ""},
    {"removeVdevice", "viommu", "removeVdevice", ""},
    {"readEvents", "viommu", "readEvents", "records"},
    {"memslotAdd", "vm", "addMemslot", "memslot.pa"},
    {"memslotDelete", "vm", "deleteMemslot", ""},
    {"memslotMove", "vm", "moveMemslot", ""},
    {"memslotFlags", "vm", "setMemslotFlags", ""},
    {"pin", "vm", "pin", "runs"},
    {"unpin", "vm", "unpin", ""},
    {"claimGroup", "groups", "claimGroup", "ownership"},
    {"claimDevice", "groups", "claimDevice", "ownership"},
    {"release", "ownership", "release", ""},
    {"attach", "ownership", "attach", ""},
    {"replace", "ownership", "replace", ""},
    {"detach", "ownership", "detach", ""},
    {"attachPasid", "ownership", "attachPasid", ""},
    {"replacePasid", "ownership", "replacePasid", ""},
    {"detachPasid", "ownership", "detachPasid", ""},
    {"attachDevice", "groups", "attachDevice", ""},
    {"detachDevice", "groups", "detachDevice", ""},
    {"allocPaging", "allocator", "allocPaging", "domain"},
    {"allocIdentity", "allocator", "allocIdentity", "domain"},
    {"allocBlocked", "allocator", "allocBlocked", "domain"},
    {"allocNested", "allocator", "allocNested", "domain"},
    {"shadow", "stage2", "shadow", "shadow"},
};

// The call a step makes, whether written as `call` or as a typed step.
struct CallSpec {
  kj::StringPtr target;
  kj::StringPtr method;
  kj::StringPtr result;
  kj::StringPtr args;                              // `call`: text parameters
  capnp::List<rpc::CapArg>::Reader capArgs;        // `call`: capability parameters
  kj::Maybe<capnp::DynamicStruct::Reader> typed;   // typed step: its struct
  kj::StringPtr targetField;                       // typed step: the field not copied
};

kj::Maybe<CallSpec> callOf(rpc::Step::Reader step) {
  if (step.isCall()) {
    auto c = step.getCall();
    return CallSpec{c.getTarget(), c.getMethod(), c.getResult(), c.getArgs(), c.getCapArgs(), nullptr, nullptr};
  }
  capnp::DynamicStruct::Reader dynamic = capnp::toDynamic(step);
  KJ_IF_MAYBE(member, dynamic.which()) {
    auto name = member->getProto().getName();
    for (auto& t : TYPED_STEPS) {
      if (t.field == name) {
        auto typed = dynamic.get(*member).as<capnp::DynamicStruct>();
        auto target = typed.get(t.target).as<capnp::Text>();
        return CallSpec{target, t.method, t.result, "()", {}, typed, t.target};
      }
    }
  }
  return nullptr;
}

// A named value: a capability (usable as a call target or capArg) or anything else as text.
struct Saved {
  kj::Maybe<capnp::DynamicCapability::Client> cap;
  kj::String text;
  kj::String display;   // for `print`: addresses and registers in hex
};

// Whether a number under this field name is an address or a register, shown in hex.
bool isHexName(kj::StringPtr name) {
  for (auto exact : {"value", "raw", "vste", "dw0", "dw1", "ttb", "ttb0", "ttb1", "s2ttb", "offset",
                     "cdTable", "sid", "vsid", "streamid", "mask"}) {
    if (name == exact) return true;
  }
  kj::String lower = kj::heapString(name);
  for (auto& c : lower) c = char(tolower(c));
  for (auto suffix : {"pa", "iova", "addr", "address", "base"}) {
    if (lower.endsWith(suffix)) return true;
  }
  return false;
}

// Cap'n Proto text with the numbers of address and register fields in hex.
kj::String display(capnp::DynamicValue::Reader v, kj::StringPtr name, capnp::TextCodec& codec) {
  switch (v.getType()) {
    case capnp::DynamicValue::UINT:
      if (isHexName(name)) return kj::str("0x", kj::hex(v.as<uint64_t>()));
      return kj::str(v.as<uint64_t>());
    case capnp::DynamicValue::INT:
      return kj::str(v.as<int64_t>());
    case capnp::DynamicValue::BOOL:
      return kj::str(v.as<bool>() ? "true" : "false");
    case capnp::DynamicValue::VOID:
      return kj::str("void");
    case capnp::DynamicValue::ENUM:
      KJ_IF_MAYBE(e, v.as<capnp::DynamicEnum>().getEnumerant()) {
        return kj::heapString(e->getProto().getName());
      }
      return kj::str(v.as<capnp::DynamicEnum>().getRaw());
    case capnp::DynamicValue::CAPABILITY:
      return kj::str("<capability>");
    case capnp::DynamicValue::LIST: {
      kj::Vector<kj::String> items;
      for (auto item : v.as<capnp::DynamicList>()) items.add(display(item, name, codec));
      return kj::str("[", kj::strArray(items, ", "), "]");
    }
    case capnp::DynamicValue::STRUCT: {
      auto s = v.as<capnp::DynamicStruct>();
      kj::Vector<kj::String> fields;
      // In the schema's order: every field outside the union, the union's member that is set.
      auto active = s.which();
      for (auto f : s.getSchema().getFields()) {
        if (f.getProto().getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT) {
          KJ_IF_MAYBE(a, active) {
            if (*a != f) continue;
          } else {
            continue;
          }
        }
        auto n = f.getProto().getName();
        fields.add(kj::str(n, " = ", display(s.get(f), n, codec)));
      }
      return kj::str("(", kj::strArray(fields, ", "), ")");
    }
    default:
      return codec.encode(v);
  }
}

// A hardware outcome the results report: a `fault` or `aborted` union member, at the top of
// the results or in a list of per-transaction results. Returns the member's name and text.
kj::Maybe<std::pair<kj::StringPtr, kj::String>> failureIn(capnp::DynamicStruct::Reader s,
                                                          capnp::TextCodec& codec, int depth = 1) {
  KJ_IF_MAYBE(f, s.which()) {
    auto name = f->getProto().getName();
    if (name == "fault" || name == "aborted") {
      return std::make_pair(kj::StringPtr(name), display(s.get(*f), name, codec));
    }
  }
  if (depth == 0) return nullptr;
  for (auto f : s.getSchema().getNonUnionFields()) {
    auto type = f.getType();
    if (!type.isList() || !type.asList().getElementType().isStruct()) continue;
    for (auto item : s.get(f).as<capnp::DynamicList>()) {
      KJ_IF_MAYBE(found, failureIn(item.as<capnp::DynamicStruct>(), codec, depth - 1)) {
        return kj::mv(*found);
      }
    }
  }
  return nullptr;
}

kj::String enumerantName(rpc::Errno e) {
  auto enumerants = capnp::Schema::from<rpc::Errno>().getEnumerants();
  if (uint16_t(e) < enumerants.size()) return kj::heapString(enumerants[uint16_t(e)].getProto().getName());
  return kj::str(uint16_t(e));
}

// A typed step's parameter as its default label shows it: numbers that are addresses or
// registers in hex, structs by their non-default fields, a list of one struct as that struct.
kj::String labelValue(capnp::DynamicValue::Reader v, kj::StringPtr name) {
  capnp::TextCodec codec;
  switch (v.getType()) {
    case capnp::DynamicValue::TEXT: {
      auto t = v.as<capnp::Text>();
      if (t.startsWith("$")) return kj::heapString(t);
      return codec.encode(v);
    }
    case capnp::DynamicValue::LIST: {
      auto list = v.as<capnp::DynamicList>();
      if (list.size() == 1) return labelValue(list[0], name);
      if (list.size() > 0 && list[0].getType() == capnp::DynamicValue::STRUCT) return kj::str("[", list.size(), "]");
      return display(v, name, codec);
    }
    case capnp::DynamicValue::STRUCT: {
      auto s = v.as<capnp::DynamicStruct>();
      kj::Vector<kj::String> parts;
      for (auto f : s.getSchema().getFields()) {
        if (!s.has(f, capnp::HasMode::NON_DEFAULT)) continue;
        auto n = f.getProto().getName();
        auto value = s.get(f);
        if (value.getType() == capnp::DynamicValue::BOOL) {
          parts.add(kj::heapString(n));   // only `true` is non-default
        } else {
          parts.add(kj::str(n, "=", labelValue(value, n)));
        }
      }
      return kj::str("(", kj::strArray(parts, " "), ")");
    }
    default:
      return display(v, name, codec);
  }
}

// An unlabelled typed step's label: the step, its target and what is not default, e.g.
// "dma ep0 iova=0x10000000 length=4" — shortened to fit a report's column.
kj::String typedLabel(rpc::Step::Reader step, const CallSpec& call, capnp::DynamicStruct::Reader typed) {
  capnp::DynamicStruct::Reader dynamic = capnp::toDynamic(step);
  auto field = KJ_ASSERT_NONNULL(dynamic.which()).getProto().getName();
  kj::Vector<kj::String> parts;
  parts.add(kj::str(field, " ", call.target));
  for (auto f : typed.getSchema().getFields()) {
    auto n = f.getProto().getName();
    if (n == call.targetField || !typed.has(f, capnp::HasMode::NON_DEFAULT)) continue;
    auto value = typed.get(f);
    if (value.getType() == capnp::DynamicValue::BOOL) {
      parts.add(kj::heapString(n));
    } else {
      parts.add(kj::str(n, "=", labelValue(value, n)));
    }
  }
  auto label = kj::strArray(parts, " ");
  constexpr size_t WIDTH = 64;
  if (label.size() > WIDTH) return kj::str(label.slice(0, WIDTH - 3), "...");
  return label;
}

kj::String stepSummary(rpc::Step::Reader step) {
  if (step.hasLabel()) return kj::heapString(step.getLabel());
  if (step.isRepeat()) return kj::str("repeat ", step.getRepeat().getCount(), "x");
  if (step.isPrint()) return kj::str("print");
  if (step.isKill()) return kj::str("kill ", step.getKill().getInstance());
  KJ_IF_MAYBE(c, callOf(step)) {
    KJ_IF_MAYBE(typed, c->typed) { return typedLabel(step, *c, *typed); }
    return kj::str(c->target, ".", c->method);
  }
  if (step.isGuestAttach()) return kj::str(step.getGuestAttach().getGuest(), ".attach");
  if (step.isGuestMap()) return kj::str(step.getGuestMap().getGuest(), ".map");
  if (step.isGuestUnmap()) return kj::str(step.getGuestUnmap().getGuest(), ".unmap");
  // A check: what it checks.
  kj::Vector<kj::String> counters;
  for (auto c : step.getExpect().getCounters()) counters.add(kj::str(c.getInstance(), ".", c.getCounter()));
  if (counters.empty()) return kj::str("check");
  auto label = kj::str("check ", kj::strArray(counters, ", "));
  if (label.size() > 64) return kj::str(label.slice(0, 61), "...");
  return label;
}

// An exception's description as the report shows it: the same whichever process threw it.
// (Two-party RPC prefixes errors from another vat with "remote exception: ".)
kj::StringPtr describe(const kj::Exception& e) {
  kj::StringPtr d = e.getDescription();
  constexpr kj::StringPtr REMOTE = "remote exception: "_kj;
  return d.startsWith(REMOTE) ? d.slice(REMOTE.size()) : d;
}

// TextCodec::decode, with the text bounded first: its parser recurses per nested bracket, so
// unbounded text could overflow the stack. Too large or too deep is a plain error naming both.
void decodeBounded(capnp::TextCodec& codec, kj::StringPtr text, capnp::DynamicStruct::Builder out) {
  KJ_IF_MAYBE(e, textBoundsError(text, MAX_ARGS_BYTES, MAX_TEXT_DEPTH)) {
    kj::throwFatalException(kj::Exception(
        kj::Exception::Type::FAILED, __FILE__, __LINE__,
        e->line == 0 ? kj::str("argument text too large to parse: ", e->message)
                     : kj::str("argument text too deep to parse: ", e->message, " at column ",
                               e->column, e->line > 1 ? kj::str(" of line ", e->line) : kj::str())));
  }
  codec.decode(text, out);
}

kj::Vector<kj::StringPtr> splitPath(kj::StringPtr path) {
  kj::Vector<kj::StringPtr> parts;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); i++) {
    if (i == path.size() || path[i] == '.') {
      if (i > start) parts.add(kj::StringPtr(path.begin() + start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// `$name` tokens in `text`, for checks.
kj::Vector<kj::String> referencedNames(kj::StringPtr text) {
  kj::Vector<kj::String> names;
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] != '$') continue;
    size_t start = i + 1, end = start;
    while (end < text.size() && (isalnum(text[end]) || text[end] == '_')) end++;
    if (end > start) names.add(kj::heapString(text.slice(start, end)));
    i = end - 1;
  }
  return names;
}

}  // namespace

struct ScenarioRunner::Impl {
  kj::WaitScope& waitScope;
  rpc::Root::Client root;
  kj::HashMap<uint64_t, capnp::InterfaceSchema> schemas;    // by interface ID
  kj::HashMap<kj::String, capnp::InterfaceSchema> instances; // instance -> main interface
  kj::HashMap<kj::String, capnp::DynamicCapability::Client> mains;
  kj::HashMap<kj::String, Saved> saved;
  // Values of scenarios already run. Capabilities among them stay referenced until the runner
  // goes, so counters read after a run do not depend on when a process-placed component learns
  // that a capability was dropped (e.g. a domain freed, its IDs and page table released).
  kj::Vector<kj::HashMap<kj::String, Saved>> retired;
  capnp::TextCodec codec;
  kj::Maybe<PhysMem&> memory;
  kj::HashMap<kj::String, kj::Own<guest::GuestQueue>> guests;
  kj::HashMap<kj::String, kj::Own<guest::GuestDriver>> drivers;  // guestAttach's, by guest name
  kj::HashMap<kj::String, bool> impls;       // every implementation the manifest runs
  const Registry& registry;
  kj::Maybe<kj::Function<void(const StepSpan&)>> observer;
  kj::StringPtr file;   // of the scenario running
  ModeledClock* clock = &ModeledClock::off();
  kj::StringPtr profile;
  kj::Timer* timer = nullptr;

  // Lets the background work a step caused finish (bounded: a handler that never ends does not
  // hang the scenario; its work is then charged to later steps).
  void settle() {
    if (timer == nullptr) return;
    for (int spins = 0; clock->background() > 0 && spins < 100000; spins++) {
      timer->afterDelay(20 * kj::MICROSECONDS).wait(waitScope);
    }
  }

  // Per-step accounting: every counter of every instance, by index, as last read.
  kj::Vector<std::pair<kj::String, kj::String>> counterKeys;   // (instance, counter)
  kj::HashMap<kj::String, size_t> counterIndex;                 // "instance.counter" -> index
  kj::HashMap<kj::String, kj::Vector<size_t>> instanceIndexes;  // instance -> its counters' indexes
  kj::Vector<kj::String> instanceOrder;                         // start order, then "memory"
  kj::Vector<kj::Maybe<uint64_t>> lastCounters;
  bool stepCounters = true;                                     // setStepCounters()
  kj::HashMap<kj::String, rpc::Component::Client> components;
  kj::HashMap<kj::String, bool> processPlaced;
  ScenarioRunner::Supervisor* supervisor = nullptr;
  rpc::Root::Client statsRoot;   // where they are read (not traced: the scenario's calls are)
  // check(): a value of each saved name's type, so call arguments parse before anything runs.
  kj::HashMap<kj::String, kj::String> samples;
  // check(): how many times the enclosing repeats run the steps being checked.
  uint64_t repeatIterations = 1;

  Impl(kj::WaitScope& ws, rpc::Root::Client r, const Registry& registry, kj::Maybe<PhysMem&> memory,
       kj::Maybe<rpc::Root::Client> statsRootOrNull)
      : waitScope(ws), root(kj::mv(r)), memory(memory), registry(registry),
        statsRoot(pickStatsRoot(kj::mv(statsRootOrNull), root)) {
    for (auto name : registry.names()) {
      auto& type = KJ_ASSERT_NONNULL(registry.find(name));
      schemas.upsert(type.interface.getProto().getId(), type.interface, [](auto&, auto&&) {});
    }
    auto list = root.listRequest().send().wait(waitScope);  // outlives the loop: readers point into it
    for (auto inst : list.getInstances()) {
      KJ_IF_MAYBE(schema, schemas.find(inst.getInterfaceId())) {
        instances.insert(kj::heapString(inst.getName()), *schema);
      }
      impls.upsert(kj::heapString(inst.getImpl()), true, [](auto&, auto&&) {});
      instanceOrder.add(kj::heapString(inst.getName()));
      if (inst.getPlacement() == rpc::Placement::PROCESS) {
        processPlaced.insert(kj::heapString(inst.getName()), true);
      }
    }
    instanceOrder.add(kj::str("memory"));
    // hw/mem's frame allocator is a call target too, so scenarios allocate the memory their
    // structures live in ("memory" is not a manifest instance name: the composer reserves it).
    instances.insert(kj::str("memory"), capnp::Schema::from<rpc::FrameAllocator>());
    mains.insert(kj::str("memory"), root.memoryRequest().send().getFrames().castAs<capnp::DynamicCapability>(
                                        capnp::Schema::from<rpc::FrameAllocator>()));
  }

  static rpc::Root::Client pickStatsRoot(kj::Maybe<rpc::Root::Client> given, rpc::Root::Client& root) {
    KJ_IF_MAYBE(g, given) { return kj::mv(*g); }
    return root;
  }

  // The expectations that hold for this manifest: the first `whenImpl` entry whose
  // implementation runs, else `expect`.
  rpc::Expect::Reader expectOf(rpc::Step::Reader step) {
    for (auto w : step.getWhenImpl()) {
      if (impls.find(w.getImpl()) != nullptr) return w.getExpect();
    }
    return step.getExpect();
  }

  // ---- building and checking the tree

  kj::Own<Node> build(rpc::Step::Reader step, kj::ArrayPtr<const uint32_t> lines, size_t& cursor, uint8_t depth) {
    auto node = kj::heap<Node>();
    node->step = step;
    node->line = cursor < lines.size() ? lines[cursor] : 0;
    node->depth = depth;
    cursor++;
    if (step.isRepeat()) {
      for (auto s : step.getRepeat().getSteps()) node->children.add(build(s, lines, cursor, depth + 1));
    }
    return node;
  }

  // Statically known type of a saved name: a capability's interface, or unknown.
  using Known = kj::HashMap<kj::String, kj::Maybe<capnp::InterfaceSchema>>;

  void check(Node& node, Known& known, kj::StringPtr file, kj::Vector<ScenarioError>& errors) {
    auto err = [&](kj::String message) {
      errors.add(ScenarioError{kj::heapString(file), node.line, 1, kj::mv(message)});
    };
    auto step = node.step;
    kj::Maybe<capnp::Type> resultType;
    switch (step.which()) {
      case rpc::Step::REPEAT: {
        // Bounded before anything runs: a count past the limit is a typo or a hang.
        uint64_t count = step.getRepeat().getCount();
        if (count > MAX_REPEAT_COUNT) {
          err(kj::str("repeat count ", count, " is more than the limit of ", MAX_REPEAT_COUNT));
          break;
        }
        if (count != 0 && repeatIterations > MAX_REPEAT_ITERATIONS / count) {
          err(kj::str("repeat count ", count, " inside repeats of ", repeatIterations,
                      " iterations runs its steps more than the limit of ", MAX_REPEAT_ITERATIONS,
                      " times"));
          break;
        }
        auto outer = repeatIterations;
        repeatIterations *= kj::max(count, uint64_t(1));
        KJ_DEFER(repeatIterations = outer);
        auto counter = kj::heapString(step.getRepeat().getCounter());
        bool shadowed = known.find(counter) != nullptr;
        if (!shadowed) known.insert(kj::heapString(counter), nullptr);
        samples.upsert(kj::heapString(counter), kj::str(step.getRepeat().getStart()),
                       [](auto& a, auto&& b) { a = kj::mv(b); });
        for (auto& child : node.children) check(*child, known, file, errors);
        if (!shadowed) known.erase(counter);
        break;
      }
      case rpc::Step::CHECK:
        break;
      case rpc::Step::KILL: {
        auto k = step.getKill();
        auto signal = k.getSignal();
        if (instances.find(k.getInstance()) == nullptr || k.getInstance() == "memory") {
          err(kj::str("kill: no instance '", k.getInstance(), "' in the manifest"));
        } else if (processPlaced.find(k.getInstance()) == nullptr) {
          err(kj::str("kill: '", k.getInstance(), "' is inline-placed; only a process-placed "
                      "instance has a process to end"));
        }
        if (signal != 9 && signal != 15 && signal != 11 && signal != 6) {
          err(kj::str("kill: signal ", signal, " does not end a process; use 9 (SIGKILL), 15 "
                      "(SIGTERM), 11 (SIGSEGV) or 6 (SIGABRT)"));
        }
        if (supervisor == nullptr) err(kj::str("kill: this runner has no composer to ask"));
        break;
      }
      case rpc::Step::PRINT:
        for (auto& name : referencedNames(step.getPrint())) {
          if (known.find(name) == nullptr) err(kj::str("'$", name, "' is used before it is set"));
        }
        break;
      case rpc::Step::GUEST_INVALIDATE: {
        auto g = step.getGuestInvalidate();
        checkCommands(g.getCommands(), err);
        checkCapabilityName(g.getViommu(), known, err);
        if (g.getRing().hasS2Domain()) checkCapabilityName(g.getRing().getS2Domain(), known, err);
        break;
      }
      case rpc::Step::GUEST_ATTACH: {
        auto g = step.getGuestAttach();
        checkCapabilityName(g.getViommu(), known, err);
        checkCapabilityName(g.getOwnership(), known, err);
        checkCapabilityName(g.getVm(), known, err, capnp::Schema::from<rpc::Vm>());
        checkCapabilityName(g.getAllocator(), known, err, capnp::Schema::from<rpc::DomainAllocator>());
        known.upsert(kj::str(GUEST_PREFIX, g.getGuest()), nullptr, [](auto&, auto&&) {});
        break;
      }
      case rpc::Step::GUEST_MAP:
        checkGuest(step.getGuestMap().getGuest(), known, err);
        break;
      case rpc::Step::GUEST_UNMAP:
        checkGuest(step.getGuestUnmap().getGuest(), known, err);
        break;
      default: {
        auto call = KJ_ASSERT_NONNULL(callOf(step), "step kind without a handler");
        kj::Maybe<capnp::InterfaceSchema> iface;
        auto target = call.target;
        if (target.startsWith("$")) {
          KJ_IF_MAYBE(k, known.find(target.slice(1))) {
            iface = *k;
            if (*k == nullptr) err(kj::str("'", target, "' is not known to hold a capability"));
          } else {
            err(kj::str("'", target, "' is used before it is set (saveAs)"));
          }
        } else KJ_IF_MAYBE(s, instances.find(target)) {
          iface = *s;
        } else {
          err(kj::str("no instance '", target, "' in the manifest"));
        }
        for (auto& name : referencedNames(call.args)) {
          if (known.find(name) == nullptr) err(kj::str("'$", name, "' is used before it is set"));
        }
        KJ_IF_MAYBE(schema, iface) {
          KJ_IF_MAYBE(method, schema->findMethodByName(call.method)) {
            auto params = method->getParamType();
            for (auto c : call.capArgs) {
              KJ_IF_MAYBE(f, params.findFieldByName(c.getField())) {
                if (!f->getType().isInterface()) err(kj::str("capArgs field '", c.getField(), "' is not a capability"));
              } else {
                err(kj::str("method '", call.method, "' has no parameter '", c.getField(), "'"));
              }
              if (!c.getValue().startsWith("$") || known.find(c.getValue().slice(1)) == nullptr) {
                err(kj::str("capArgs value '", c.getValue(), "' must be a saved capability ($name)"));
              }
            }
            KJ_IF_MAYBE(typed, call.typed) {
              for (auto f : typed->getSchema().getFields()) {
                auto name = f.getProto().getName();
                if (name == call.targetField) continue;
                if (fillsData(f, params)) {
                  // `steFields` / `cdFields` build the 64 bytes a DMA writes (`data`).
                  if (typed->has(f, capnp::HasMode::NON_DEFAULT)) {
                    KJ_IF_MAYBE(e, structureError(f, typed->get(f))) { err(kj::mv(*e)); }
                    KJ_IF_MAYBE(data, typed->getSchema().findFieldByName("data")) {
                      if (typed->has(*data, capnp::HasMode::NON_DEFAULT)) {
                        err(kj::str("give 'data' or '", name, "', not both"));
                      }
                    }
                  }
                  continue;
                }
                if (isSteFields(f)) {
                  // `vsteFields` builds the `vste` parameter.
                  auto param = kj::heapString(name.slice(0, name.size() - strlen("Fields")));
                  if (typed->has(f, capnp::HasMode::NON_DEFAULT)) {
                    auto words = encodeSte(typed->get(f).as<rpc::SteFields>());
                    if (words.is<kj::String>()) err(kj::heapString(words.get<kj::String>()));
                    KJ_IF_MAYBE(other, typed->getSchema().findFieldByName(param)) {
                      if (typed->has(*other, capnp::HasMode::NON_DEFAULT)) {
                        err(kj::str("give '", param, "' or '", name, "', not both"));
                      }
                    }
                  }
                  continue;
                }
                if (f.getType().isList() && f.getType().asList().getElementType().isStruct() &&
                    f.getType().asList().getElementType().asStruct().getProto().getId() ==
                        capnp::typeId<rpc::RawCommand>()) {
                  checkCommands(typed->get(f).as<capnp::List<rpc::RawCommand>>(), err);
                }
                KJ_IF_MAYBE(param, params.findFieldByName(name)) {
                  if (param->getType().isInterface() && typed->has(f)) {
                    checkCapabilityName(typed->get(f).as<capnp::Text>(), known, err,
                                        param->getType().asInterface());
                  }
                } else {
                  err(kj::str("method '", call.method, "' has no parameter '", name, "'"));
                }
              }
            }
            if (call.typed == nullptr) checkArgs(call, *method, err);
            capnp::Type type = method->getResultType();
            for (auto part : splitPath(call.result)) {
              if (type.isList() && std::all_of(part.begin(), part.end(), ::isdigit)) {
                type = type.asList().getElementType();  // a list index
                continue;
              }
              if (!type.isStruct()) {
                err(kj::str("result path '", call.result, "' goes through a non-struct at '", part, "'"));
                break;
              }
              KJ_IF_MAYBE(f, type.asStruct().findFieldByName(part)) {
                type = f->getType();
              } else {
                err(kj::str("result path '", call.result, "': no field '", part, "'"));
                break;
              }
            }
            resultType = type;
          } else {
            kj::Vector<kj::StringPtr> names;
            for (auto m : schema->getMethods()) names.add(m.getProto().getName());
            err(kj::str("interface ", schema->getShortDisplayName(), " has no method '", call.method,
                        "'; methods: ", kj::strArray(names, ", ")));
          }
        }
        break;
      }
    }
    for (auto w : step.getWhenImpl()) {
      if (registry.find(w.getImpl()) == nullptr) {
        err(kj::str("whenImpl names '", w.getImpl(), "', which is no registered implementation"));
      }
    }
    for (auto c : expectOf(step).getCounters()) {
      if (c.getInstance() != "memory" && instances.find(c.getInstance()) == nullptr) {
        err(kj::str("counter check names instance '", c.getInstance(), "', which the manifest lacks"));
      }
    }
    if (step.hasSaveAs()) {
      kj::Maybe<capnp::InterfaceSchema> iface;
      samples.erase(step.getSaveAs());
      KJ_IF_MAYBE(t, resultType) {
        if (t->isInterface()) iface = t->asInterface();
        KJ_IF_MAYBE(sample, sampleOf(*t)) {
          samples.insert(kj::heapString(step.getSaveAs()), kj::mv(*sample));
        }
      }
      known.upsert(kj::heapString(step.getSaveAs()), iface, [](auto& a, auto&& b) { a = kj::mv(b); });
    }
  }

  // Text that parses as a value of `type`, standing in for a saved value in check().
  static kj::Maybe<kj::String> sampleOf(capnp::Type type) {
    switch (type.which()) {
      case capnp::schema::Type::BOOL: return kj::str("false");
      case capnp::schema::Type::INT8: case capnp::schema::Type::INT16:
      case capnp::schema::Type::INT32: case capnp::schema::Type::INT64:
      case capnp::schema::Type::UINT8: case capnp::schema::Type::UINT16:
      case capnp::schema::Type::UINT32: case capnp::schema::Type::UINT64:
        return kj::str("0");
      case capnp::schema::Type::FLOAT32: case capnp::schema::Type::FLOAT64:
        return kj::str("0.0");
      case capnp::schema::Type::TEXT: return kj::str("\"\"");
      case capnp::schema::Type::ENUM: {
        auto enumerants = type.asEnum().getEnumerants();
        if (enumerants.size() > 0) return kj::heapString(enumerants[0].getProto().getName());
        return nullptr;
      }
      case capnp::schema::Type::STRUCT: return kj::str("()");
      case capnp::schema::Type::LIST: return kj::str("[]");
      default: return nullptr;
    }
  }

  // A call's argument text parsed as the method's parameters before anything runs, `$name`
  // standing for a value of the saved name's type (skipped when a type is not known).
  template <typename Err>
  void checkArgs(const CallSpec& call, capnp::InterfaceSchema::Method method, Err& err) {
    kj::Vector<char> text;
    auto args = call.args;
    KJ_IF_MAYBE(e, textBoundsError(args, MAX_ARGS_BYTES, MAX_TEXT_DEPTH)) {
      err(kj::str("args of ", method.getProto().getName(), " are too ",
                  e->line == 0 ? "large" : "deep", " to parse: ", e->message,
                  e->line == 0 ? kj::str() : kj::str(" at column ", e->column,
                                                     e->line > 1 ? kj::str(" of line ", e->line)
                                                                 : kj::str())));
      return;
    }
    for (size_t i = 0; i < args.size(); i++) {
      if (args[i] == '$') {
        size_t start = i + 1, end = start;
        while (end < args.size() && (isalnum(args[end]) || args[end] == '_')) end++;
        KJ_IF_MAYBE(sample, samples.find(args.slice(start, end))) {
          text.addAll(*sample);
        } else {
          return;   // a value of unknown type: it parses when it runs, or the step fails
        }
        i = end - 1;
        continue;
      }
      text.add(args[i]);
    }
    text.add('\0');
    kj::String literal(text.releaseAsArray());
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      capnp::MallocMessageBuilder scratch;
      auto params = scratch.initRoot<capnp::DynamicStruct>(method.getParamType());
      decodeBounded(codec, literal, params);
    })) {
      err(kj::str("args \"", args, "\" are not parameters of ", method.getProto().getName(), ": ",
                  describe(*e)));
    }
  }

  // A capability named in a step: a saved one ("$name"), or — where the parameter's interface
  // is `expected` — an instance serving that interface.
  template <typename Err>
  void checkCapabilityName(kj::StringPtr name, Known& known, Err& err,
                           kj::Maybe<capnp::InterfaceSchema> expected = nullptr) {
    if (!name.startsWith("$")) {
      KJ_IF_MAYBE(want, expected) {
        KJ_IF_MAYBE(s, instances.find(name)) {
          if (!s->extends(*want)) {
            err(kj::str("instance '", name, "' serves ", s->getShortDisplayName(), ", not ",
                        want->getShortDisplayName()));
          }
        } else {
          err(kj::str("no instance '", name, "' in the manifest"));
        }
        return;
      }
      err(kj::str("'", name, "' must name a saved capability ($name)"));
    } else KJ_IF_MAYBE(k, known.find(name.slice(1))) {
      if (*k == nullptr) err(kj::str("'", name, "' is not known to hold a capability"));
    } else {
      err(kj::str("'", name, "' is used before it is set (saveAs)"));
    }
  }

  // Guest drivers are names of their own, known once a guestAttach step made them.
  static constexpr kj::StringPtr GUEST_PREFIX = "guest driver "_kj;
  template <typename Err>
  void checkGuest(kj::StringPtr name, Known& known, Err& err) {
    if (known.find(kj::str(GUEST_PREFIX, name)) == nullptr) {
      err(kj::str("guest '", name, "' is used before a guestAttach step sets it up"));
    }
  }

  // ---- running

  kj::String substitute(kj::StringPtr text) {
    kj::Vector<char> out;
    for (size_t i = 0; i < text.size(); i++) {
      if (text[i] == '$') {
        size_t start = i + 1, end = start;
        while (end < text.size() && (isalnum(text[end]) || text[end] == '_')) end++;
        auto name = text.slice(start, end);
        auto& value = KJ_REQUIRE_NONNULL(saved.find(name), "name used before it is set", name);
        out.addAll(value.text);
        i = end - 1;
        continue;
      }
      out.add(text[i]);
    }
    out.add('\0');
    return kj::String(out.releaseAsArray());
  }

  capnp::DynamicCapability::Client target(kj::StringPtr name) {
    if (name.startsWith("$")) {
      auto& s = KJ_REQUIRE_NONNULL(saved.find(name.slice(1)), "name used before it is set", name);
      return KJ_REQUIRE_NONNULL(s.cap, "named value is not a capability", name);
    }
    KJ_IF_MAYBE(m, mains.find(name)) { return *m; }
    auto schema = KJ_REQUIRE_NONNULL(instances.find(name), "no such instance", name);
    auto req = root.getRequest();
    req.setName(name);
    auto main = req.send().getMain().castAs<capnp::DynamicCapability>(schema);
    mains.insert(kj::heapString(name), main);
    return main;
  }

  struct Outcome {
    kj::Maybe<capnp::DynamicStruct::Reader> response;  // the results
    kj::Own<void> owner;                                // what `response` points into
    kj::Maybe<kj::Exception> exception;
  };

  // A typed step's field set on a request: a Text naming a saved capability fills a capability
  // parameter, a List(RawCommand) fills a Data parameter; anything else is copied as it is.
  void setTypedField(capnp::DynamicStruct::Builder req, capnp::StructSchema::Field field,
                     capnp::DynamicValue::Reader value) {
    auto name = field.getProto().getName();
    if (fillsData(field, req.getSchema())) {
      // A whole STE or CD built by field: the 64 bytes a DMA writes.
      auto words = structureWords(field, value);
      auto data = req.init("data", sizeof(words.dw)).as<capnp::Data>();
      memcpy(data.begin(), words.dw, sizeof(words.dw));
      return;
    }
    if (isSteFields(field)) {
      // An STE built by field fills the list of words it names (`vsteFields` -> `vste`).
      auto result = encodeSte(value.as<rpc::SteFields>());
      auto words = KJ_REQUIRE_NONNULL(result.tryGet<CommandWords>(), "STE fields do not encode");
      auto listName = kj::heapString(name.slice(0, name.size() - strlen("Fields")));
      auto list = req.init(listName, 2).as<capnp::List<uint64_t>>();
      list.set(0, words.dw0);
      list.set(1, words.dw1);
      return;
    }
    auto param = KJ_ASSERT_NONNULL(req.getSchema().findFieldByName(name));
    if (param.getType().isInterface()) {
      // A saved capability ("$name") or an instance's main capability.
      req.set(param, target(value.as<capnp::Text>()));
    } else if (param.getType().isData() && field.getType().isList()) {
      auto commands = value.as<capnp::List<rpc::RawCommand>>();
      auto data = req.init(param, commands.size() * 16).as<capnp::Data>();
      for (auto i : kj::indices(commands)) {
        auto w = wordsOf(commands[i]);
        uint64_t words[2] = {w.dw0, w.dw1};
        memcpy(data.begin() + i * 16, words, 16);
      }
    } else {
      req.set(param, value);
    }
  }

  static bool isCdFields(capnp::StructSchema::Field f) {
    return f.getType().isStruct() && f.getType().asStruct().getProto().getId() == capnp::typeId<rpc::CdFields>();
  }
  // A typed step's STE or CD by field that stands for the method's `data` bytes (a DMA write),
  // rather than for a list of words of its own name (`vsteFields` -> `vste`).
  static bool fillsData(capnp::StructSchema::Field f, capnp::StructSchema params) {
    if (!isSteFields(f) && !isCdFields(f)) return false;
    auto name = f.getProto().getName();
    auto own = kj::heapString(name.slice(0, name.size() - strlen("Fields")));
    KJ_IF_MAYBE(d, params.findFieldByName("data")) {
      return params.findFieldByName(own) == nullptr && d->getType().isData();
    }
    return false;
  }
  static kj::OneOf<StructureWords, kj::String> encodeStructure(capnp::StructSchema::Field f,
                                                            capnp::DynamicValue::Reader value) {
    if (isCdFields(f)) return encodeCdWords(value.as<rpc::CdFields>());
    return encodeSteWords(value.as<rpc::SteFields>());
  }
  static kj::Maybe<kj::String> structureError(capnp::StructSchema::Field f,
                                              capnp::DynamicValue::Reader value) {
    auto result = encodeStructure(f, value);
    KJ_IF_MAYBE(e, result.tryGet<kj::String>()) { return kj::mv(*e); }
    return nullptr;
  }
  // The words; check() has refused those that do not encode.
  static StructureWords structureWords(capnp::StructSchema::Field f, capnp::DynamicValue::Reader value) {
    auto result = encodeStructure(f, value);
    return KJ_REQUIRE_NONNULL(result.tryGet<StructureWords>(), "structure fields do not encode");
  }

  static bool isSteFields(capnp::StructSchema::Field f) {
    return f.getType().isStruct() && f.getType().asStruct().getProto().getId() == capnp::typeId<rpc::SteFields>();
  }

  // A command's words; check() has refused those that do not encode.
  static CommandWords wordsOf(rpc::RawCommand::Reader command) {
    auto result = encodeCommand(command);
    KJ_SWITCH_ONEOF(result) {
      KJ_CASE_ONEOF(words, CommandWords) { return words; }
      KJ_CASE_ONEOF(error, kj::String) { KJ_FAIL_REQUIRE("command does not encode", error); }
    }
    KJ_UNREACHABLE;
  }

  template <typename Err>
  static void checkCommands(capnp::List<rpc::RawCommand>::Reader commands, Err& err) {
    for (auto i : kj::indices(commands)) {
      auto result = encodeCommand(commands[i]);
      if (result.is<kj::String>()) err(kj::str("commands[", i, "]: ", result.get<kj::String>()));
    }
  }

  Outcome doCall(const CallSpec& call) {
    Outcome outcome;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto cap = target(call.target);
      auto req = cap.newRequest(call.method);
      decodeBounded(codec, substitute(call.args), req);
      for (auto c : call.capArgs) {
        auto& s = KJ_REQUIRE_NONNULL(saved.find(c.getValue().slice(1)), "name used before it is set");
        req.set(c.getField(), KJ_REQUIRE_NONNULL(s.cap, "named value is not a capability"));
      }
      KJ_IF_MAYBE(typed, call.typed) {
        for (auto f : typed->getSchema().getFields()) {
          auto name = f.getProto().getName();
          if (name != call.targetField && typed->has(f)) setTypedField(req, f, typed->get(f));
        }
      }
      auto response = kj::heap(req.send().wait(waitScope));
      outcome.response = capnp::DynamicStruct::Reader(*response);
      outcome.owner = kj::mv(response);
    })) {
      outcome.exception = kj::mv(*e);
    }
    return outcome;
  }

  // The guest driver of each vIOMMU (by its saved name), created on its first guest step.
  guest::GuestQueue& guestOf(rpc::GuestInvalidateStep::Reader step) {
    KJ_IF_MAYBE(q, guests.find(step.getViommu())) { return **q; }
    auto viommu = target(step.getViommu()).castAs<rpc::Viommu>();
    auto ring = step.getRing();
    guest::GpaToPa gpaToPa = [](uint64_t) -> kj::Promise<kj::Maybe<uint64_t>> {
      return kj::Maybe<uint64_t>(nullptr);
    };
    if (ring.hasS2Domain()) {
      auto domain = target(ring.getS2Domain()).castAs<rpc::Domain>();
      gpaToPa = [domain](uint64_t gpa) mutable -> kj::Promise<kj::Maybe<uint64_t>> {
        auto req = domain.iovaToPhysRequest();
        req.setIova(gpa);
        return req.send().then([](auto&& r) -> kj::Maybe<uint64_t> {
          if (r.getErrno() != rpc::Errno::OK) return nullptr;
          return r.getPa();
        });
      };
    }
    PhysMem& mem = KJ_REQUIRE_NONNULL(memory, "guest steps need the system's physical memory");
    auto queue = guest::GuestQueue::create(kj::mv(viommu), mem, kj::mv(gpaToPa),
                                           guest::VcmdqRing{ring.getGpa(), ring.getLog2Entries()})
                     .wait(waitScope);
    queue->setClock(*clock);
    auto& ref = *queue;
    guests.insert(kj::heapString(step.getViommu()), kj::mv(queue));
    return ref;
  }

  Outcome guestInvalidate(rpc::GuestInvalidateStep::Reader step) {
    Outcome outcome;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto& queue = guestOf(step);
      auto commands = step.getCommands();
      size_t n = commands.size();
      for (auto r : step.getRuns()) n += r.getCount();
      auto words = kj::heapArrayBuilder<const uint64_t>(n * 2);
      for (auto c : commands) {
        auto w = wordsOf(c);
        words.add(w.dw0);
        words.add(w.dw1);
      }
      for (auto r : step.getRuns()) {
        for (uint32_t i = 0; i < r.getCount(); i++) {
          words.add(r.getDw0());
          words.add(r.getDw1() + i * r.getDw1Stride());
        }
      }
      auto result = queue.invalidate(words.finish()).wait(waitScope);
      auto message = kj::heap<capnp::MallocMessageBuilder>();
      auto out = message->initRoot<rpc::GuestResult>();
      out.setErrno(result.errno_);
      out.setEntryNum(result.entryNum);
      out.setMessage(result.message);
      outcome.response = capnp::toDynamic(out.asReader());
      outcome.owner = kj::mv(message);
    })) {
      outcome.exception = kj::mv(*e);
    }
    return outcome;
  }

  // ---- guest driver steps (system/guest/guest-driver.h): run here, not as one call

  static rpc::Errno errnoOf(pt::Errno e) {
    switch (e) {
      case pt::Errno::OK: return rpc::Errno::OK;
      case pt::Errno::NOENT: return rpc::Errno::E_NO_ENT;
      case pt::Errno::NOMEM: return rpc::Errno::E_NO_MEM;
      case pt::Errno::EXIST: return rpc::Errno::E_EXIST;
      case pt::Errno::INVAL: return rpc::Errno::E_INVAL;
      case pt::Errno::RANGE: return rpc::Errno::E_RANGE;
      case pt::Errno::OPNOTSUPP: return rpc::Errno::E_OP_NOT_SUPP;
    }
    return rpc::Errno::E_INVAL;
  }

  // Runs `body` filling a GuestStepResult; an exception becomes the step's exception.
  template <typename Body>
  Outcome guestStep(Body&& body) {
    Outcome outcome;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto message = kj::heap<capnp::MallocMessageBuilder>();
      auto out = message->initRoot<rpc::GuestStepResult>();
      body(out);
      outcome.response = capnp::toDynamic(out.asReader());
      outcome.owner = kj::mv(message);
    })) {
      outcome.exception = kj::mv(*e);
    }
    return outcome;
  }

  guest::GuestDriver& driverOf(kj::StringPtr name) {
    auto& d = KJ_REQUIRE_NONNULL(drivers.find(name), "no guest of that name attached", name);
    return *d;
  }

  Outcome guestAttach(rpc::GuestAttachStep::Reader step) {
    return guestStep([&](rpc::GuestStepResult::Builder out) {
      PhysMem& mem = KJ_REQUIRE_NONNULL(memory, "guest steps need the system's physical memory");
      guest::GuestSetup setup;
      setup.regionGpa = step.getRegion().getGpa();
      setup.regionSize = step.getRegion().getSize();
      setup.asid = step.getAsid();
      setup.vsid = step.getVsid();
      auto vm = target(step.getVm()).castAs<rpc::Vm>();
      auto viommu = target(step.getViommu()).castAs<rpc::Viommu>();
      auto driver = guest::GuestDriver::create(mem, kj::mv(vm), kj::mv(viommu), setup).wait(waitScope);
      driver->queue().setClock(*clock);
      auto status = driver->attach(target(step.getAllocator()).castAs<rpc::DomainAllocator>(),
                                   target(step.getOwnership()).castAs<rpc::Ownership>())
                        .wait(waitScope);
      out.setErrno(status.errno_);
      out.setMessage(status.message);
      auto words = driver->vste();
      auto vste = out.initVste(uint32_t(words.size()));
      for (auto i : kj::indices(words)) vste.set(uint32_t(i), words[i]);
      out.setCdTable(driver->cdTableGpa());
      drivers.upsert(kj::heapString(step.getGuest()), kj::mv(driver),
                     [](auto& a, auto&& b) { a = kj::mv(b); });
    });
  }

  Outcome guestMap(rpc::GuestMapStep::Reader step) {
    return guestStep([&](rpc::GuestStepResult::Builder out) {
      auto prot = pt::Prot::CACHE;
      if (step.getRead()) prot = prot | pt::Prot::READ;
      if (step.getWrite()) prot = prot | pt::Prot::WRITE;
      auto r = driverOf(step.getGuest()).map(step.getIova(), step.getGpa(), step.getSize(), prot);
      out.setErrno(errnoOf(r.error));
      out.setBytes(r.bytesMapped);
    });
  }

  Outcome guestUnmap(rpc::GuestUnmapStep::Reader step) {
    return guestStep([&](rpc::GuestStepResult::Builder out) {
      auto& driver = driverOf(step.getGuest());
      auto r = driver.unmap(step.getIova(), step.getSize());
      out.setBytes(r.bytesUnmapped);
      if (r.error != pt::Errno::OK) {
        out.setErrno(errnoOf(r.error));
        return;
      }
      if (!step.getInvalidate()) return;
      auto result = driver.invalidate(r.invalidations).wait(waitScope);
      out.setErrno(result.errno_);
      out.setEntryNum(result.entryNum);
      out.setMessage(result.message);
    });
  }

  // Follows a dotted path (field names, list indexes) from a struct.
  kj::Maybe<capnp::DynamicValue::Reader> select(capnp::DynamicValue::Reader value, kj::StringPtr path,
                                                kj::String& error) {
    for (auto part : splitPath(path)) {
      if (value.getType() == capnp::DynamicValue::STRUCT) {
        auto s = value.as<capnp::DynamicStruct>();
        KJ_IF_MAYBE(f, s.getSchema().findFieldByName(part)) {
          if (!s.has(*f, capnp::HasMode::NON_DEFAULT) && f->getProto().getDiscriminantValue() != 0xffff &&
              s.which() != *f) {
            error = kj::str("'", part, "' is not set (the union holds another member)");
            return nullptr;
          }
          value = s.get(*f);
        } else {
          error = kj::str("no field '", part, "'");
          return nullptr;
        }
      } else if (value.getType() == capnp::DynamicValue::LIST) {
        auto l = value.as<capnp::DynamicList>();
        kj::Maybe<uint> index;
        if (part.size() > 0 && part.size() < 10 && std::all_of(part.begin(), part.end(), ::isdigit)) {
          index = uint(strtoul(kj::heapString(part).cStr(), nullptr, 10));
        }
        KJ_IF_MAYBE(i, index) {
          if (*i >= l.size()) {
            error = kj::str("index ", *i, " beyond list of ", l.size());
            return nullptr;
          }
          value = l[*i];
        } else {
          error = kj::str("'", part, "' is not a list index");
          return nullptr;
        }
      } else {
        error = kj::str("'", part, "' goes through a non-struct");
        return nullptr;
      }
    }
    return value;
  }

  kj::String text(capnp::DynamicValue::Reader v) {
    if (v.getType() == capnp::DynamicValue::ENUM) {
      KJ_IF_MAYBE(e, v.as<capnp::DynamicEnum>().getEnumerant()) { return kj::heapString(e->getProto().getName()); }
    }
    if (v.getType() == capnp::DynamicValue::CAPABILITY) return kj::str("<capability>");
    return codec.encode(v);
  }

  // Canonical text of an expected value given as text: re-encoded through its type when the
  // actual value's type is known, so "0x10" matches 16 and "(a=1)" matches "(a = 1)".
  kj::String canonical(kj::StringPtr expected, capnp::DynamicValue::Reader actual) {
    kj::Maybe<kj::String> result;
    kj::runCatchingExceptions([&]() {
      auto e = kj::heapString(expected);
      char* end = nullptr;
      switch (actual.getType()) {
        case capnp::DynamicValue::UINT: {
          auto v = strtoull(e.cStr(), &end, 0);
          if (end != nullptr && *end == '\0' && end != e.cStr()) result = kj::str(v);
          return;
        }
        case capnp::DynamicValue::INT: {
          auto v = strtoll(e.cStr(), &end, 0);
          if (end != nullptr && *end == '\0' && end != e.cStr()) result = kj::str(v);
          return;
        }
        case capnp::DynamicValue::TEXT:
          if (!expected.startsWith("\"")) result = codec.encode(capnp::DynamicValue::Reader(capnp::Text::Reader(e)));
          return;
        case capnp::DynamicValue::STRUCT: {
          capnp::MallocMessageBuilder scratch;
          auto root = scratch.initRoot<capnp::DynamicStruct>(actual.as<capnp::DynamicStruct>().getSchema());
          decodeBounded(codec, expected, root);
          result = codec.encode(root.asReader());
          return;
        }
        default:
          return;
      }
    });
    KJ_IF_MAYBE(r, result) { return kj::mv(*r); }
    return kj::heapString(expected);
  }

  void fail(Node& node, uint32_t iteration, kj::StringPtr what, kj::String expected, kj::String actual) {
    node.ok = false;
    if (node.failures.size() < MAX_FAILURES_PER_STEP) {
      node.failures.add(Node::Failure{kj::heapString(what), kj::mv(expected), kj::mv(actual), iteration});
    }
  }

  void checkField(Node& node, uint32_t iteration, capnp::DynamicValue::Reader root, kj::StringPtr path,
                  kj::StringPtr expected, kj::StringPtr what) {
    kj::String error;
    KJ_IF_MAYBE(v, select(root, path, error)) {
      auto actual = text(*v);
      auto want = canonical(expected, *v);
      if (actual != want) {
        // Shown as a person reads them: addresses and registers in hex.
        auto parts = splitPath(path);
        kj::StringPtr name = parts.empty() ? kj::StringPtr("") : parts.back();
        if (v->getType() == capnp::DynamicValue::UINT && isHexName(name)) {
          char* end = nullptr;
          auto w = strtoull(want.cStr(), &end, 0);
          if (end != nullptr && *end == '\0' && end != want.cStr()) want = kj::str("0x", kj::hex(w));
        }
        fail(node, iteration, what, kj::mv(want), display(*v, name, codec));
      }
    } else {
      fail(node, iteration, what, kj::heapString(expected), kj::mv(error));
    }
  }

  kj::Maybe<kj::String> errnoOf(capnp::DynamicStruct::Reader results, kj::StringPtr resultPath) {
    kj::String error;
    auto check = [&](capnp::DynamicValue::Reader v) -> kj::Maybe<kj::String> {
      if (v.getType() != capnp::DynamicValue::STRUCT) return nullptr;
      auto s = v.as<capnp::DynamicStruct>();
      KJ_IF_MAYBE(f, s.getSchema().findFieldByName("errno")) {
        if (f->getType().isEnum()) return text(s.get(*f));
      }
      return nullptr;
    };
    KJ_IF_MAYBE(sel, select(results, resultPath, error)) {
      KJ_IF_MAYBE(e, check(*sel)) { return kj::mv(*e); }
    }
    return check(results);
  }

  // One instance's counters, as `nestbed run` reports them (hw/mem's own under "memory").
  kj::HashMap<kj::String, uint64_t> countersOf(kj::StringPtr instance) {
    kj::HashMap<kj::String, uint64_t> out;
    if (instance == "memory") {
      auto info = root.memoryRequest().send().getFrames().infoRequest().send().wait(waitScope);
      out.insert(kj::str("size_bytes"), info.getSize());
      out.insert(kj::str("used_bytes"), info.getUsedBytes());
      return out;
    }
    auto req = root.getRequest();
    req.setName(instance);
    auto stats = req.send().getComponent().statsRequest().send().wait(waitScope);
    for (auto c : stats.getCounters()) out.upsert(kj::heapString(c.getName()), c.getValue(), [](auto&, auto&&) {});
    return out;
  }

  void expectations(Node& node, uint32_t iteration, Outcome& outcome) {
    auto expect = expectOf(node.step);
    auto step = node.step;
    auto outcomeExpect = expect.getOutcome();
    bool any = outcomeExpect.isAny();
    KJ_IF_MAYBE(e, outcome.exception) {
      if (outcomeExpect.isException()) {
        if (strstr(describe(*e).cStr(), kj::heapString(outcomeExpect.getException()).cStr()) == nullptr) {
          fail(node, iteration, "exception", kj::str("containing \"", outcomeExpect.getException(), "\""),
               kj::heapString(describe(*e)));
        }
      } else if (!any) {
        fail(node, iteration, "outcome",
             outcomeExpect.isErrno() ? enumerantName(outcomeExpect.getErrno()) : kj::str("success"),
             kj::str("exception: ", describe(*e)));
      }
      return;
    }
    if (outcomeExpect.isException()) {
      fail(node, iteration, "outcome", kj::str("exception containing \"", outcomeExpect.getException(), "\""),
           kj::str("success"));
    }
    KJ_IF_MAYBE(response, outcome.response) {
      capnp::DynamicStruct::Reader results = *response;
      kj::StringPtr resultPath = "";
      KJ_IF_MAYBE(c, callOf(step)) { resultPath = c->result; }
      auto actualErrno = errnoOf(results, resultPath);
      if (outcomeExpect.isErrno()) {
        auto want = enumerantName(outcomeExpect.getErrno());
        KJ_IF_MAYBE(a, actualErrno) {
          if (*a != want) fail(node, iteration, "errno", kj::mv(want), kj::mv(*a));
        } else {
          fail(node, iteration, "errno", kj::mv(want), kj::str("(the results carry no errno)"));
        }
      } else if (outcomeExpect.isSuccess()) {
        KJ_IF_MAYBE(a, actualErrno) {
          if (*a != "ok") fail(node, iteration, "errno", kj::str("ok"), kj::mv(*a));
        }
      }
      // A fault or an aborted transaction the step does not name is an outcome it did not ask
      // for: it fails the step, as an errno or an exception would.
      if (!any && !expect.hasFault()) {
        KJ_IF_MAYBE(found, failureIn(results, codec)) {
          bool named = false;
          for (auto f : expect.getFields()) {
            for (auto part : splitPath(f.getPath())) named = named || part == found->first;
          }
          if (!named) {
            fail(node, iteration, "outcome", kj::str("success"),
                 kj::str(found->first, " ", found->second));
          }
        }
      }
      if (expect.hasValue()) checkField(node, iteration, results, resultPath, expect.getValue(), "value");
      for (auto f : expect.getFields()) {
        checkField(node, iteration, results, f.getPath(), f.getEquals(), kj::str("fields.", f.getPath()));
      }
      if (expect.hasFault()) {
        auto fault = expect.getFault();
        kj::String error;
        KJ_IF_MAYBE(v, select(results, "fault", error)) {
          checkField(node, iteration, *v, "type", fault.getType(), "fault.type");
          for (auto f : fault.getFields()) {
            checkField(node, iteration, *v, f.getPath(), f.getEquals(), kj::str("fault.", f.getPath()));
          }
        } else {
          fail(node, iteration, "fault", kj::heapString(fault.getType()), kj::str("no fault: ", error));
        }
      }
    }
  }

  // ---- per-step accounting

  // Every instance's counters now, by counter index (new counters get the next indexes).
  kj::Vector<kj::Maybe<uint64_t>> readCounters() {
    kj::Vector<kj::Maybe<uint64_t>> values(counterKeys.size());
    for (size_t i = 0; i < counterKeys.size(); i++) values.add(nullptr);
    auto put = [&](kj::StringPtr instance, kj::StringPtr counter, uint64_t value) {
      auto key = kj::str(instance, ".", counter);
      size_t index;
      KJ_IF_MAYBE(i, counterIndex.find(key)) {
        index = *i;
      } else {
        index = counterKeys.size();
        counterKeys.add(kj::heapString(instance), kj::heapString(counter));
        counterIndex.insert(kj::mv(key), index);
        values.add(nullptr);
      }
      values[index] = value;
    };
    // Every request is sent before any is waited on: one round of pipelined calls.
    kj::Vector<capnp::RemotePromise<rpc::Component::StatsResults>> pending;
    for (auto& name : instanceOrder) {
      if (name == "memory") continue;
      auto& component = components.findOrCreate(name, [&]() {
        auto req = statsRoot.getRequest();
        req.setName(name);
        return kj::HashMap<kj::String, rpc::Component::Client>::Entry{
            kj::heapString(name), req.send().getComponent()};
      });
      pending.add(component.statsRequest().send());
    }
    auto info = statsRoot.memoryRequest().send().getFrames().infoRequest().send();
    size_t k = 0;
    for (auto& name : instanceOrder) {
      if (name == "memory") continue;
      // An instance that died has no counters to read; the composer reports its exit.
      kj::runCatchingExceptions([&]() {
        auto stats = pending[k].wait(waitScope);
        // An instance returns its counters in the same order every time: their indexes from
        // the last read, checked by name, spare building and hashing a key per counter.
        auto& known = instanceIndexes.findOrCreate(name, [&]() {
          return kj::HashMap<kj::String, kj::Vector<size_t>>::Entry{kj::heapString(name), {}};
        });
        auto counters = stats.getCounters();
        for (uint32_t j = 0; j < counters.size(); j++) {
          auto c = counters[j];
          if (j < known.size() && counterKeys[known[j]].second == c.getName()) {
            values[known[j]] = c.getValue();
            continue;
          }
          put(name, c.getName(), c.getValue());
          size_t index = KJ_ASSERT_NONNULL(counterIndex.find(kj::str(name, ".", c.getName())));
          if (j < known.size()) {
            known[j] = index;
          } else {
            known.add(index);
          }
        }
      });
      k++;
    }
    kj::runCatchingExceptions([&]() {
      auto i = info.wait(waitScope);
      put("memory", "size_bytes", i.getSize());
      put("memory", "used_bytes", i.getUsedBytes());
    });
    return values;
  }

  // Every instance's counters once the system has settled: work a step set off
  // asynchronously (an interrupt's handler reading the event queue) belongs to that step,
  // whether it ran inline or in another process. Read until two reads agree.
  kj::Vector<kj::Maybe<uint64_t>> settledCounters() {
    auto now = readCounters();
    for (int round = 0; round < 16; round++) {
      auto again = readCounters();
      bool same = again.size() == now.size();
      for (size_t i = 0; same && i < now.size(); i++) {
        KJ_IF_MAYBE(a, again[i]) {
          KJ_IF_MAYBE(b, now[i]) { same = *a == *b; } else { same = false; }
        } else {
          same = now[i] == nullptr;
        }
      }
      now = kj::mv(again);
      if (same) break;
    }
    return now;
  }

  // What the step just run changed, added to the node's deltas: read once the background work it
  // set off has finished, as its modeled time is.
  void account(Node& node) {
    settle();
    if (!stepCounters) return;
    auto now = settledCounters();
    while (node.deltas.size() < now.size()) node.deltas.add(0);
    for (size_t i = 0; i < now.size(); i++) {
      KJ_IF_MAYBE(after, now[i]) {
        uint64_t before = 0;
        if (i < lastCounters.size()) {
          KJ_IF_MAYBE(b, lastCounters[i]) { before = *b; }
        }
        node.deltas[i] += int64_t(*after - before);
      }
    }
    lastCounters = kj::mv(now);
  }

  // A step's deltas: its own, or for a repeat the sum of its steps'.
  kj::Vector<int64_t> deltasOf(Node& node) {
    if (!node.step.isRepeat()) {
      kj::Vector<int64_t> copy;
      copy.addAll(node.deltas);
      return copy;
    }
    kj::Vector<int64_t> sum;
    for (auto& child : node.children) {
      auto d = deltasOf(*child);
      while (sum.size() < d.size()) sum.add(0);
      for (auto i : kj::indices(d)) sum[i] += d[i];
    }
    return sum;
  }

  // ---- observing

  void record(Node& node, uint32_t iteration, Outcome& outcome) {
    if (!node.step.hasRecord()) return;
    kj::String value;
    KJ_IF_MAYBE(e, outcome.exception) {
      value = kj::str("exception: ", describe(*e));
    } else KJ_IF_MAYBE(response, outcome.response) {
      kj::StringPtr resultPath = "";
      KJ_IF_MAYBE(spec, callOf(node.step)) { resultPath = spec->result; }
      // A refusal, a fault or an abort is in the results as a whole, not in the part a success
      // would have been read from (the bytes of a DMA).
      auto errno_ = errnoOf(*response, resultPath);
      bool refused = false;
      KJ_IF_MAYBE(e, errno_) { refused = *e != "ok"; }
      if (refused || failureIn(*response, codec) != nullptr) resultPath = "";
      kj::String error;
      KJ_IF_MAYBE(v, select(*response, resultPath, error)) {
        auto parts = splitPath(resultPath);
        value = display(*v, parts.empty() ? kj::StringPtr("") : parts.back(), codec);
      } else {
        value = kj::mv(error);
      }
    }
    node.records.add(Node::Record{kj::heapString(node.step.getRecord()), kj::mv(value), iteration});
  }

  kj::String printText(kj::StringPtr text) {
    kj::Vector<char> out;
    for (size_t i = 0; i < text.size(); i++) {
      if (text[i] == '$') {
        size_t start = i + 1, end = start;
        while (end < text.size() && (isalnum(text[end]) || text[end] == '_')) end++;
        KJ_IF_MAYBE(value, saved.find(text.slice(start, end))) {
          out.addAll(value->display);
          i = end - 1;
          continue;
        }
      }
      out.add(text[i]);
    }
    out.add('\0');
    return kj::String(out.releaseAsArray());
  }

  // A call that met a dead capability fails with DISCONNECTED; the RPC system words it
  // ("Peer disconnected"). Name what died instead: the composer may not have seen the exit yet
  // when the error arrives, so wait (briefly) until it has.
  void nameLosses(Outcome& outcome) {
    KJ_IF_MAYBE(e, outcome.exception) {
      if (e->getType() != kj::Exception::Type::DISCONNECTED) return;
      KJ_IF_MAYBE(s, supervisor) {
        if (strstr(describe(*e).cStr(), "component '") != nullptr) return;  // named already
        for (int i = 0; i < 200 && (s->exitPending() || s->lossCount() == 0); i++) {
          if (timer == nullptr) break;
          timer->afterDelay(5 * kj::MILLISECONDS).wait(waitScope);
        }
        KJ_IF_MAYBE(l, s->losses()) {
          outcome.exception = kj::Exception(e->getType(), e->getFile(), e->getLine(),
                                            kj::str(*l, " (", describe(*e), ")"));
        }
      }
    }
  }

  void counters(Node& node, uint32_t iteration) {
    // Each instance's stats are fetched once per step, however many counters are checked.
    kj::HashMap<kj::String, kj::HashMap<kj::String, uint64_t>> fetched;
    for (auto c : expectOf(node.step).getCounters()) {
      auto what = kj::str("counter ", c.getInstance(), ".", c.getCounter());
      if (fetched.find(c.getInstance()) == nullptr) {
        // A dead instance has no counters: the check fails, naming what died.
        kj::Maybe<kj::HashMap<kj::String, uint64_t>> got;
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { got = countersOf(c.getInstance()); })) {
          Outcome failed;
          failed.exception = kj::mv(*e);
          nameLosses(failed);
          fail(node, iteration, what, kj::str("a counter"),
               kj::str("exception: ", describe(KJ_ASSERT_NONNULL(failed.exception))));
          continue;
        }
        fetched.insert(kj::heapString(c.getInstance()), kj::mv(KJ_ASSERT_NONNULL(got)));
      }
      auto& all = KJ_ASSERT_NONNULL(fetched.find(c.getInstance()));
      uint64_t value = 0;
      KJ_IF_MAYBE(v, all.find(c.getCounter())) {
        value = *v;
      } else {
        fail(node, iteration, what, kj::str("a counter"), kj::str("no counter '", c.getCounter(), "'"));
        continue;
      }
      switch (c.which()) {
        case rpc::Expect::CounterCheck::EQUALS:
          if (value != c.getEquals()) fail(node, iteration, what, kj::str("= ", c.getEquals()), kj::str(value));
          break;
        case rpc::Expect::CounterCheck::AT_LEAST:
          if (value < c.getAtLeast()) fail(node, iteration, what, kj::str(">= ", c.getAtLeast()), kj::str(value));
          break;
        case rpc::Expect::CounterCheck::AT_MOST:
          if (value > c.getAtMost()) fail(node, iteration, what, kj::str("<= ", c.getAtMost()), kj::str(value));
          break;
      }
    }
  }

  void save(Node& node, Outcome& outcome) {
    if (!node.step.hasSaveAs()) return;
    Saved value{nullptr, kj::str(), kj::str()};
    KJ_IF_MAYBE(response, outcome.response) {
      kj::String error;
      kj::StringPtr resultPath = "";
      KJ_IF_MAYBE(spec, callOf(node.step)) { resultPath = spec->result; }
      KJ_IF_MAYBE(v, select(*response, resultPath, error)) {
        if (v->getType() == capnp::DynamicValue::CAPABILITY) {
          value.cap = v->as<capnp::DynamicCapability>();
        }
        value.text = text(*v);
        auto parts = splitPath(resultPath);
        value.display = display(*v, parts.empty() ? kj::StringPtr("") : parts.back(), codec);
      }
    }
    saved.upsert(kj::heapString(node.step.getSaveAs()), kj::mv(value), [](auto& a, auto&& b) { a = kj::mv(b); });
  }

  void runNode(Node& node, uint32_t iteration) {
    using Clock = std::chrono::steady_clock;
    auto began = Clock::now();
    auto modeledBefore = clock->totals();
    runStep(node, iteration);
    settle();
    auto d = clock->totals() - modeledBefore;
    node.modeled.now += d.now;
    node.modeled.wait += d.wait;
    for (size_t c = 0; c < COST_CLASSES; c++) {
      node.modeled.ns[c] += d.ns[c];
      node.modeled.units[c] += d.units[c];
    }
    KJ_IF_MAYBE(o, observer) {
      auto label = stepSummary(node.step);
      (*o)(StepSpan{file, node.line, label, node.depth, iteration, node.step.isRepeat(), node.ok, began,
                    Clock::now(), modeledBefore.now, modeledBefore.now + d.now, &d});
    }
  }

  void runStep(Node& node, uint32_t iteration) {
    using Clock = std::chrono::steady_clock;
    node.iterations++;
    switch (node.step.which()) {
      case rpc::Step::REPEAT: {
        auto r = node.step.getRepeat();
        auto t = Clock::now();
        auto counterName = kj::heapString(r.getCounter());
        for (uint32_t k = 0; k < r.getCount(); k++) {
          auto value = r.getStart() + k * r.getStride();
          saved.upsert(kj::heapString(counterName), Saved{nullptr, kj::str(value), kj::str(value)},
                       [](auto& a, auto&& b) { a = kj::mv(b); });
          for (auto& child : node.children) runNode(*child, k);
        }
        saved.erase(counterName);
        node.micros += std::chrono::duration<double, std::micro>(Clock::now() - t).count();
        node.iterations += r.getCount() - 1;  // every iteration of every time it ran (+1 above)
        for (auto& child : node.children) node.ok = node.ok && child->ok;
        break;
      }
      case rpc::Step::CHECK:
        break;
      case rpc::Step::KILL: {
        auto k = node.step.getKill();
        auto t = Clock::now();
        Outcome outcome;
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
          KJ_ASSERT_NONNULL(supervisor).kill(k.getInstance(), k.getSignal()).wait(waitScope);
        })) {
          outcome.exception = kj::mv(*e);
        }
        node.micros += std::chrono::duration<double, std::micro>(Clock::now() - t).count();
        account(node);
        expectations(node, iteration, outcome);
        break;
      }
      case rpc::Step::PRINT:
        node.records.add(Node::Record{kj::str(), printText(node.step.getPrint()), iteration});
        break;
      case rpc::Step::GUEST_INVALIDATE:
      case rpc::Step::GUEST_ATTACH:
      case rpc::Step::GUEST_MAP:
      case rpc::Step::GUEST_UNMAP: {
        auto t = Clock::now();
        auto outcome = node.step.isGuestInvalidate() ? guestInvalidate(node.step.getGuestInvalidate())
                       : node.step.isGuestAttach()   ? guestAttach(node.step.getGuestAttach())
                       : node.step.isGuestMap()      ? guestMap(node.step.getGuestMap())
                                                     : guestUnmap(node.step.getGuestUnmap());
        nameLosses(outcome);
        node.micros += std::chrono::duration<double, std::micro>(Clock::now() - t).count();
        account(node);
        expectations(node, iteration, outcome);
        record(node, iteration, outcome);
        save(node, outcome);
        break;
      }
      default: {
        auto spec = KJ_ASSERT_NONNULL(callOf(node.step), "step kind without a handler");
        auto t = Clock::now();
        auto outcome = doCall(spec);
        nameLosses(outcome);
        node.micros += std::chrono::duration<double, std::micro>(Clock::now() - t).count();
        account(node);
        expectations(node, iteration, outcome);
        record(node, iteration, outcome);
        save(node, outcome);
        break;
      }
    }
    counters(node, iteration);
  }

  void report(Node& node, kj::Vector<Node*>& flat) {
    flat.add(&node);
    for (auto& c : node.children) report(*c, flat);
  }
};

ScenarioRunner::ScenarioRunner(kj::WaitScope& waitScope, rpc::Root::Client root, const Registry& registry,
                               kj::Maybe<PhysMem&> memory, kj::Maybe<rpc::Root::Client> statsRoot)
    : impl_(kj::heap<Impl>(waitScope, kj::mv(root), registry, memory, kj::mv(statsRoot))) {}
ScenarioRunner::~ScenarioRunner() noexcept(false) {}

void ScenarioRunner::setSupervisor(Supervisor& supervisor) { impl_->supervisor = &supervisor; }

void ScenarioRunner::setClock(ModeledClock& clock, kj::StringPtr profileName, kj::Timer& timer) {
  impl_->clock = &clock;
  impl_->profile = profileName;
  impl_->timer = &timer;
}

kj::Array<ScenarioError> ScenarioRunner::check(const LoadedScenario& scenario) {
  kj::Vector<ScenarioError> errors;
  size_t cursor = 0;
  Impl::Known known;
  for (auto step : scenario.scenario.getSteps()) {
    auto node = impl_->build(step, scenario.stepLines, cursor, 0);
    impl_->check(*node, known, scenario.file, errors);
  }
  return errors.releaseAsArray();
}

void ScenarioRunner::setStepCounters(bool on) { impl_->stepCounters = on; }

void ScenarioRunner::run(const LoadedScenario& scenario, rpc::ScenarioReport::Builder report) {
  kj::Vector<kj::Own<Node>> roots;
  size_t cursor = 0;
  for (auto step : scenario.scenario.getSteps()) roots.add(impl_->build(step, scenario.stepLines, cursor, 0));
  impl_->file = scenario.file;
  if (impl_->stepCounters) impl_->lastCounters = impl_->settledCounters();   // the first step's baseline
  for (auto& node : roots) impl_->runNode(*node, 0);
  impl_->retired.add(kj::mv(impl_->saved));
  impl_->saved = {};
  impl_->guests.clear();
  impl_->drivers.clear();

  kj::Vector<Node*> flat;
  for (auto& node : roots) impl_->report(*node, flat);
  report.setFile(scenario.file);
  report.setDescription(scenario.scenario.getDescription());
  report.setProfile(impl_->profile);
  uint64_t scenarioNs = 0;
  for (auto& node : roots) scenarioNs += node->modeled.now;
  report.setModeledNs(scenarioNs);
  bool ok = true;
  auto steps = report.initSteps(flat.size());
  for (auto i : kj::indices(flat)) {
    auto& n = *flat[i];
    auto s = steps[i];
    s.setLine(n.line);
    s.setLabel(stepSummary(n.step));
    s.setOk(n.ok);
    s.setMicros(n.micros);
    s.setModeledNs(n.modeled.now);
    {
      size_t shares = n.modeled.wait ? 1 : 0;
      for (size_t c = 0; c < COST_CLASSES; c++) shares += n.modeled.ns[c] || n.modeled.units[c];
      auto out = s.initModeled(shares);
      size_t k = 0;
      for (size_t c = 0; c < COST_CLASSES; c++) {
        if (!n.modeled.ns[c] && !n.modeled.units[c]) continue;
        out[k].setCost(costKey(Cost(c)));
        out[k].setUnits(n.modeled.units[c]);
        out[k].setNs(n.modeled.ns[c]);
        k++;
      }
      if (n.modeled.wait) {
        out[k].setCost("wait");
        out[k].setUnits(1);
        out[k].setNs(n.modeled.wait);
      }
    }
    s.setIterations(n.iterations);
    s.setDepth(n.depth);
    auto deltas = impl_->deltasOf(n);
    size_t changed = 0;
    for (auto d : deltas) changed += d != 0;
    auto out = s.initDeltas(changed);
    for (size_t i = 0, k = 0; i < deltas.size(); i++) {
      if (deltas[i] == 0) continue;
      out[k].setInstance(impl_->counterKeys[i].first);
      out[k].setCounter(impl_->counterKeys[i].second);
      out[k].setDelta(deltas[i]);
      k++;
    }
    auto records = s.initRecords(n.records.size());
    for (auto j : kj::indices(n.records)) {
      records[j].setName(n.records[j].name);
      records[j].setValue(n.records[j].value);
      records[j].setIteration(n.records[j].iteration);
    }
    auto failures = s.initFailures(n.failures.size());
    for (auto j : kj::indices(n.failures)) {
      failures[j].setWhat(n.failures[j].what);
      failures[j].setExpected(n.failures[j].expected);
      failures[j].setActual(n.failures[j].actual);
      failures[j].setIteration(n.failures[j].iteration);
    }
    ok = ok && n.ok;
  }
  report.setOk(ok);
}

kj::Maybe<kj::String> ScenarioRunner::checkCall(kj::StringPtr instance, kj::StringPtr method,
                                                kj::StringPtr args) {
  auto& impl = *impl_;
  KJ_IF_MAYBE(schema, impl.instances.find(instance)) {
    KJ_IF_MAYBE(m, schema->findMethodByName(method)) {
      kj::Maybe<kj::String> error;
      CallSpec spec{instance, method, nullptr, args, {}, nullptr, nullptr};
      auto err = [&](kj::String message) { error = kj::mv(message); };
      impl.checkArgs(spec, *m, err);
      return kj::mv(error);
    }
    kj::Vector<kj::StringPtr> names;
    for (auto m : schema->getMethods()) names.add(m.getProto().getName());
    return kj::str("interface ", schema->getShortDisplayName(), " of '", instance, "' has no method '",
                   method, "'", didYouMean(method, names), "; methods: ", kj::strArray(names, ", "));
  }
  kj::Vector<kj::StringPtr> names;
  for (auto& entry : impl.instances) names.add(entry.key);
  return kj::str("no instance '", instance, "' in the manifest", didYouMean(instance, names),
                 "; instances: ", kj::strArray(names, ", "));
}

kj::String ScenarioRunner::call(kj::StringPtr instance, kj::StringPtr method, kj::StringPtr args) {
  auto cap = impl_->target(instance);
  auto req = cap.newRequest(method);
  decodeBounded(impl_->codec, args, req);
  auto response = req.send().wait(impl_->waitScope);
  // As a report shows results: addresses and registers in hex.
  return display(capnp::DynamicStruct::Reader(response), "", impl_->codec);
}

void ScenarioRunner::observeSteps(kj::Function<void(const StepSpan&)> observer) {
  impl_->observer = kj::mv(observer);
}

namespace {

// Items joined by ", ", wrapped at 100 columns under `indent`.
void addWrapped(kj::Vector<kj::String>& lines, kj::StringPtr indent, kj::ArrayPtr<kj::String> items) {
  kj::String line = kj::heapString(indent);
  bool first = true;
  for (auto& item : items) {
    if (!first && line.size() + 2 + item.size() > 100) {
      lines.add(kj::mv(line));
      line = kj::heapString(indent);
      first = true;
    }
    line = kj::str(line, first ? "" : ", ", item);
    first = false;
  }
  if (!first) lines.add(kj::mv(line));
}

}  // namespace

kj::String formatScenarioReport(rpc::ScenarioReport::Reader report) {
  kj::Vector<kj::String> lines;
  lines.add(kj::str("scenario ", report.getFile(), report.getDescription().size() ? kj::str(": ", report.getDescription()) : kj::str()));
  if (report.getProfile().size()) {
    lines.add(kj::str("  times per iteration: modeled (profile ", report.getProfile(),
                      ", the same on every run) and wall (this machine)"));
  }
  for (auto s : report.getSteps()) {
    auto indent = kj::repeat(' ', 2 * s.getDepth());
    auto label = kj::str(indent, s.getLabel(), s.getIterations() > 1 ? kj::str(" x", s.getIterations()) : kj::str());
    char time[64];
    double per = s.getIterations() > 0 ? s.getMicros() / s.getIterations() : 0;
    double modeled = s.getIterations() > 0 ? double(s.getModeledNs()) / 1000 / s.getIterations() : 0;
    snprintf(time, sizeof(time), "%10.3f us modeled %10.1f us wall", modeled, per);
    char buf[256];
    snprintf(buf, sizeof(buf), "  %-4s line %-4u %-48s %s", s.getOk() ? "ok" : "FAIL", s.getLine(),
             label.cStr(), time);
    lines.add(kj::str(buf));
    // What drove the modeled time: the three largest shares.
    auto shares = s.getModeled();
    if (shares.size() > 0) {
      kj::Vector<rpc::CostShare::Reader> top;
      for (auto c : shares) top.add(c);
      std::sort(top.begin(), top.end(), [](auto a, auto b) { return a.getNs() > b.getNs(); });
      kj::Vector<kj::String> parts;
      for (size_t i = 0; i < kj::min(top.size(), size_t(3)); i++) {
        auto c = top[i];
        if (c.getNs() == 0) break;
        bool smmu = c.getCost().startsWith("smmu_");
        parts.add(kj::str(c.getCost() == "wait" ? kj::str() : kj::str(c.getUnits(), "x "), c.getCost(),
                          " ", c.getNs(), " ns", smmu ? " (SMMU)" : ""));
      }
      if (parts.size()) lines.add(kj::str(indent, "                 modeled: ", kj::strArray(parts, ", ")));
    }
    for (auto f : s.getFailures()) {
      lines.add(kj::str("         ", report.getFile(), ":", s.getLine(), ": ", f.getWhat(), ": expected ",
                        f.getExpected(), ", actual ", f.getActual(),
                        s.getIterations() > 1 ? kj::str(" (iteration ", f.getIteration(), ")") : kj::str()));
    }
    for (auto r : s.getRecords()) {
      auto at = s.getDepth() > 0 ? kj::str(" (iteration ", r.getIteration(), ")") : kj::str();
      if (r.getName().size() == 0) {
        lines.add(kj::str("         print: ", r.getValue(), at));
      } else {
        lines.add(kj::str("         record ", r.getName(), " = ", r.getValue(), at));
      }
    }
    if (s.getDeltas().size() > 0) {
      auto items = KJ_MAP(d, s.getDeltas()) {
        return kj::str(d.getInstance(), ".", d.getCounter(), " ", d.getDelta() > 0 ? "+" : "", d.getDelta());
      };
      addWrapped(lines, "           ", items);
    }
  }
  size_t failed = 0;
  for (auto s : report.getSteps()) failed += !s.getOk();
  lines.add(kj::str("  ", report.getOk() ? "PASS" : "FAIL", ": ", report.getSteps().size(), " steps, ", failed, " failed"));
  return kj::str(kj::strArray(lines, "\n"), "\n");
}

}  // namespace nb
