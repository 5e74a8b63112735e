// The --trace recorder in process (system/experiment/trace.h): calls through a wrapped
// capability are recorded with caller and callee, capabilities crossing in results are wrapped
// for their receiver and come back to their server unwrapped (identity kept), and calls in
// flight together land on separate threads so every thread's slices nest. Also through promises
// of capabilities, resolved or not when they cross.

#include "system/experiment/trace.h"
#include "tests/fixtures/fixture.capnp.h"
#include "tests/system/compose-testing.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace nb::experiment {
namespace {

// A counter whose adds complete when the test says so, and which can tell whether a counter
// handed to addFrom is one of its own objects.
class SlowCounter final : public fixture::Counter::Server {
public:
  SlowCounter(kj::Vector<kj::Own<kj::PromiseFulfiller<void>>>& pending,
              capnp::CapabilityServerSet<fixture::Counter>& own, bool& sawOwn)
      : pending(pending), own(own), sawOwn(sawOwn) {}

protected:
  kj::Promise<void> add(AddContext context) override {
    auto paf = kj::newPromiseAndFulfiller<void>();
    pending.add(kj::mv(paf.fulfiller));
    return paf.promise.then([context]() mutable { context.getResults().setTotal(context.getParams().getN()); });
  }
  kj::Promise<void> child(ChildContext context) override {
    context.getResults().setCounter(own.add(kj::heap<SlowCounter>(pending, own, sawOwn)));
    return kj::READY_NOW;
  }
  kj::Promise<void> addFrom(AddFromContext context) override {
    auto other = context.getParams().getOther();
    return own.getLocalServer(other).then([this](auto server) { sawOwn = server != nullptr; }).attach(kj::mv(other));
  }

private:
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>>& pending;
  capnp::CapabilityServerSet<fixture::Counter>& own;
  bool& sawOwn;
};

struct Event {
  std::string name, ph, cat, caller, callee, thread;
  int64_t pid = 0, tid = 0;
  double ts = 0, dur = 0;
};

std::vector<Event> parse(kj::StringPtr json) {
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto value = message.initRoot<capnp::JsonValue>();
  codec.decodeRaw(json, value);
  std::vector<Event> out;
  for (auto field : value.getObject()) {
    if (field.getName() != "traceEvents") continue;
    for (auto item : field.getValue().getArray()) {
      Event e;
      for (auto f : item.getObject()) {
        auto v = f.getValue();
        if (f.getName() == "name") e.name = v.getString().cStr();
        if (f.getName() == "ph") e.ph = v.getString().cStr();
        if (f.getName() == "cat") e.cat = v.getString().cStr();
        if (f.getName() == "pid") e.pid = int64_t(v.getNumber());
        if (f.getName() == "tid") e.tid = int64_t(v.getNumber());
        if (f.getName() == "ts") e.ts = v.getNumber();
        if (f.getName() == "dur") e.dur = v.getNumber();
        if (f.getName() == "args") {
          for (auto a : v.getObject()) {
            if (!a.getValue().isString()) continue;
            if (a.getName() == "caller") e.caller = a.getValue().getString().cStr();
            if (a.getName() == "callee") e.callee = a.getValue().getString().cStr();
            if (a.getName() == "name") e.thread = a.getValue().getString().cStr();
          }
        }
      }
      out.push_back(e);
    }
  }
  return out;
}

TEST_CASE("Tracer: calls, capabilities crossing, and calls in flight together", "[experiment][trace]") {
  auto io = kj::setupAsyncIo();
  auto plan = testing::planOf(
      "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\n"
      "[components.counter]\nimpl = \"fixture/counter\"\n"
      "[components.relay]\nimpl = \"fixture/relay\"\nuses = { counter = \"counter\" }\n");
  Tracer tracer(testing::testRegistry());
  tracer.beginRun("", plan);

  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> pending;
  capnp::CapabilityServerSet<fixture::Counter> own;
  bool sawOwn = false;
  capnp::Capability::Client server = own.add(kj::heap<SlowCounter>(pending, own, sawOwn));
  auto interpose = tracer.interposer();
  auto counter = interpose("relay", "counter", server).castAs<fixture::Counter>();

  // Two adds in flight: the first ends before the second, which began inside it.
  auto first = counter.addRequest();
  first.setN(1);
  auto p1 = first.send();
  io.waitScope.poll();
  auto second = counter.addRequest();
  second.setN(2);
  auto p2 = second.send();
  io.waitScope.poll();
  REQUIRE(pending.size() == 2);
  pending[0]->fulfill();
  CHECK(p1.wait(io.waitScope).getTotal() == 1);
  pending[1]->fulfill();
  CHECK(p2.wait(io.waitScope).getTotal() == 2);

  // A capability in results is wrapped for the holder: calls on it are recorded; handed back
  // to its server, it arrives unwrapped.
  auto child = counter.childRequest().send().wait(io.waitScope).getCounter();
  auto third = child.addRequest();
  third.setN(3);
  auto p3 = third.send();
  io.waitScope.poll();
  REQUIRE(pending.size() == 3);
  pending[2]->fulfill();
  CHECK(p3.wait(io.waitScope).getTotal() == 3);
  auto from = counter.addFromRequest();
  from.setOther(child);
  from.send().wait(io.waitScope);
  CHECK(sawOwn);

  // The same through a promise of it, resolved before the call and after it (a component
  // keeping a Client built from a promise).
  sawOwn = false;
  fixture::Counter::Client resolved = kj::Promise<fixture::Counter::Client>(child);
  io.waitScope.poll();
  auto viaResolved = counter.addFromRequest();
  viaResolved.setOther(resolved);
  viaResolved.send().wait(io.waitScope);
  CHECK(sawOwn);
  sawOwn = false;
  auto paf = kj::newPromiseAndFulfiller<fixture::Counter::Client>();
  fixture::Counter::Client later = kj::mv(paf.promise);
  auto viaLater = counter.addFromRequest();
  viaLater.setOther(later);
  auto sent = viaLater.send();
  io.waitScope.poll();
  paf.fulfiller->fulfill(kj::cp(child));
  sent.wait(io.waitScope);
  CHECK(sawOwn);
  tracer.endRun();

  CHECK(tracer.rpcEvents() == 7);   // add, add, child, child's add, three addFrom
  auto events = parse(tracer.json());
  std::map<std::string, int> calls;
  std::vector<Event> adds;
  for (auto& e : events) {
    // The wall-clock RPC slices; the same calls again on the modeled timeline are "modeled".
    if (e.ph != "X" || e.cat == "modeled") continue;
    CHECK(e.caller == "relay");
    CHECK(e.callee == "counter");
    calls[e.name]++;
    if (e.name == "Counter.add") adds.push_back(e);
  }
  CHECK(calls["Counter.add"] == 3);
  CHECK(calls["Counter.child"] == 1);
  CHECK(calls["Counter.addFrom"] == 3);
  REQUIRE(adds.size() == 3);
  // The two overlapping adds are on different threads; the thread is named.
  CHECK(adds[0].pid == adds[1].pid);
  CHECK(adds[0].tid != adds[1].tid);
  bool named = false;
  for (auto& e : events) named = named || (e.ph == "M" && e.thread == "calls from relay (2)");
  CHECK(named);
}

}  // namespace
}  // namespace nb::experiment
