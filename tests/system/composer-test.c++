// The composer's runtime guarantees: placement equivalence, faults (DISCONNECTED, never a
// hang, and a report naming the component), restart with rewiring, shared physical memory.

#include "tests/system/compose-testing.h"

#include "tests/fixtures/fixture.capnp.h"

#include <signal.h>

namespace nb {
namespace {

using fixture::Counter;
using fixture::Relay;

kj::String manifest(kj::StringPtr counterPlacement, kj::StringPtr relayPlacement,
                    kj::StringPtr extra = "") {
  return kj::str(
      "[memory]\nbase = 0x100000000\nsize = \"64MiB\"\n"
      "[components.counter]\nimpl = \"fixture/counter\"\nplacement = \"", counterPlacement, "\"\nstart = 5\n", extra,
      "[components.relay]\nimpl = \"fixture/relay\"\nplacement = \"", relayPlacement, "\"\n"
      "uses = { counter = \"counter\" }\n");
}

// The same calls; returns the totals seen and every instance's stats, flattened.
kj::String exercise(testing::TestSystem& sys) {
  auto relay = sys.main<Relay>("relay");
  auto counter = sys.main<Counter>("counter");
  kj::Vector<kj::String> out;
  for (uint64_t n = 1; n <= 20; n++) {
    auto req = relay.addViaRequest();
    req.setN(n);
    out.add(kj::str(req.send().wait(sys.io.waitScope).getTotal()));
  }
  auto frame = counter.allocFrameRequest().send().wait(sys.io.waitScope).getPa();
  out.add(kj::str("frame@", frame - sys.composer.memory().base()));
  for (auto& s : sys.stats()) {
    for (auto& c : s.counters) out.add(kj::str(s.name, ".", c.name, "=", c.value));
  }
  return kj::strArray(out, " ");
}

TEST_CASE("Composer: the same manifest gives identical results inline and in processes", "[composer]") {
  kj::String inlineResult, processResult, mixedResult;
  {
    testing::TestSystem sys(manifest("inline", "inline"));
    inlineResult = exercise(sys);
    CHECK(sys.composer.pidOf("counter") == nullptr);
  }
  {
    testing::TestSystem sys(manifest("process", "process"));
    processResult = exercise(sys);
    CHECK(KJ_ASSERT_NONNULL(sys.composer.pidOf("counter")) != getpid());
    // Each process-placed instance really runs in its own process.
    auto pid = sys.main<Counter>("counter").pidRequest().send().wait(sys.io.waitScope).getPid();
    CHECK(pid == KJ_ASSERT_NONNULL(sys.composer.pidOf("counter")));
  }
  {
    testing::TestSystem sys(manifest("process", "inline"));
    mixedResult = exercise(sys);
  }
  CHECK(inlineResult == processResult);
  CHECK(inlineResult == mixedResult);
  CHECK(std::string(inlineResult.cStr()).find("counter.total=215") != std::string::npos);
}

TEST_CASE("Composer: a store by one process is seen by another at the same physical address",
          "[composer][memory]") {
  auto text = kj::str("[memory]\nbase = 0x80000000\nsize = \"16MiB\"\n"
                      "[components.a]\nimpl = \"fixture/counter\"\nplacement = \"process\"\n"
                      "[components.b]\nimpl = \"fixture/counter\"\nplacement = \"process\"\n");
  testing::TestSystem sys(text);
  auto a = sys.main<Counter>("a");
  auto b = sys.main<Counter>("b");
  auto pa = a.allocFrameRequest().send().wait(sys.io.waitScope).getPa();
  auto store = a.storeRequest();
  store.setPa(pa + 8);
  store.setValue(0x0123456789abcdefull);
  store.send().wait(sys.io.waitScope);
  auto load = b.loadRequest();
  load.setPa(pa + 8);
  CHECK(load.send().wait(sys.io.waitScope).getValue() == 0x0123456789abcdefull);
  // And the composer's own mapping agrees.
  CHECK(sys.composer.memory().load64(pa + 8) == 0x0123456789abcdefull);

  // An out-of-range address is refused with a clear error naming it, and the component lives.
  auto bad = b.loadRequest();
  bad.setPa(0x10);
  auto e = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() { bad.send().wait(sys.io.waitScope); }));
  CHECK(std::string(e.getDescription().cStr()).find("physical address outside memory") != std::string::npos);
  CHECK(b.getRequest().send().wait(sys.io.waitScope).getTotal() == 0);
}

TEST_CASE("Composer: frames return to hw/mem when a component shuts down", "[composer][memory]") {
  testing::TestSystem sys(manifest("process", "inline"));
  auto counter = sys.main<Counter>("counter");
  for (int i = 0; i < 3; i++) counter.allocFrameRequest().send().wait(sys.io.waitScope);
  CHECK(sys.composer.frames().usedBytes() == 3 * 4096);
  sys.shutdown();
  CHECK(sys.composer.frames().usedBytes() == 0);
}

TEST_CASE("Composer: killing a component process mid-call gives DISCONNECTED and a report",
          "[composer][fault]") {
  testing::TestSystem sys(manifest("process", "inline"));
  auto counter = sys.main<Counter>("counter");
  auto relay = sys.main<Relay>("relay");
  auto pid = KJ_ASSERT_NONNULL(sys.composer.pidOf("counter"));

  auto e = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() {
    counter.crashRequest().send().wait(sys.io.waitScope);
  }));
  CHECK(e.getType() == kj::Exception::Type::DISCONNECTED);

  // Dependants see DISCONNECTED too, never a hang.
  auto req = relay.addViaRequest();
  req.setN(1);
  auto e2 = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() { req.send().wait(sys.io.waitScope); }));
  CHECK(e2.getType() == kj::Exception::Type::DISCONNECTED);

  sys.waitForEvents(1);
  REQUIRE(sys.events.size() >= 1);
  auto expected = kj::str("component 'counter' (pid ", pid, ") killed by signal ", SIGKILL);
  INFO(sys.events[0].cStr());
  CHECK(sys.events[0].startsWith(expected));
}

TEST_CASE("Composer: restart = on-failure restarts a stateless component and rewires its callers",
          "[composer][fault]") {
  // fixture/relay keeps no state (Recovery::STATELESS): a capability to it taken before the
  // restart reaches the new process; the counter behind it kept its total.
  testing::TestSystem sys(kj::str(
      "[memory]\nbase = 0x40000000\nsize = \"1MiB\"\n\n",
      "[components.counter]\nimpl = \"fixture/counter\"\nplacement = \"process\"\nstart = 5\n\n",
      "[components.relay]\nimpl = \"fixture/relay\"\nplacement = \"process\"\n",
      "restart = \"on-failure\"\nuses = { counter = \"counter\" }\n"));
  auto relay = sys.main<Relay>("relay");
  auto addVia = [&](uint64_t n) {
    auto req = relay.addViaRequest();
    req.setN(n);
    return req.send().wait(sys.io.waitScope).getTotal();
  };
  CHECK(addVia(1) == 6);
  auto firstPid = KJ_ASSERT_NONNULL(sys.composer.pidOf("relay"));
  sys.composer.kill("relay", SIGKILL).wait(sys.io.waitScope);
  REQUIRE(sys.events.size() == 2);
  CHECK(sys.events[0] == kj::str("component 'relay' (pid ", firstPid, ") killed by signal 9 (Killed)"));
  CHECK(sys.events[1].startsWith("component 'relay' restarted"));
  CHECK(addVia(2) == 8);
  CHECK(KJ_ASSERT_NONNULL(sys.composer.pidOf("relay")) != firstPid);
  REQUIRE(sys.composer.losses().size() == 1);
  CHECK(sys.composer.losses()[0].after == Loss::After::RESTARTED_RECOVERED);
  CHECK(sys.composer.losses()[0].expected);   // asked for by kill()
}

TEST_CASE("Composer: a component that dies during shutdown is reported as a death",
          "[composer][fault]") {
  testing::TestSystem sys(manifest("process", "inline"));
  auto pid = KJ_ASSERT_NONNULL(sys.composer.pidOf("counter"));
  auto done = sys.composer.shutdown();   // stopping from here on
  kill(pid, SIGKILL);                    // before it is asked to exit
  done.wait(sys.io.waitScope);
  sys.shutDown = true;
  REQUIRE(sys.composer.losses().size() == 1);
  auto& loss = sys.composer.losses()[0];
  CHECK(loss.duringShutdown);
  CHECK(!loss.expected);
  CHECK(loss.what == kj::str("component 'counter' (pid ", pid, ") killed by signal 9 (Killed) "
                             "during shutdown"));
  REQUIRE(sys.events.size() == 1);
  CHECK(sys.events[0] == loss.what);
}

TEST_CASE("Composer: a component that fails to start names itself", "[composer]") {
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  // The test host does not exist at this path: the process exits 127 and start fails.
  Composer composer(io, testing::testRegistry(), testing::planOf(manifest("process", "inline")),
                    ComposerOptions{kj::str("/nonexistent/host"), [](kj::StringPtr) {}});
  auto e = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); }));
  CHECK(std::string(e.getDescription().cStr()).find("starting 'counter' (fixture/counter)") != std::string::npos);
  composer.shutdown().wait(io.waitScope);
}

TEST_CASE("Composer: a list role is wired in manifest order, inline and across processes",
          "[composer][roles]") {
  auto placement = GENERATE(as<kj::StringPtr>(), "inline", "process");
  DYNAMIC_SECTION(placement.cStr()) {
    testing::TestSystem sys(kj::str(
        "[memory]\nbase = 0x80000000\nsize = \"16MiB\"\n"
        "[components.a]\nimpl = \"fixture/counter\"\nstart = 1000\n"
        "[components.b]\nimpl = \"fixture/counter\"\nplacement = \"process\"\n"
        "[components.f]\nimpl = \"fixture/fanout\"\nplacement = \"", placement, "\"\n"
        "uses = { counters = [\"b\", \"a\"] }\n"));
    auto req = sys.main<Relay>("f").addViaRequest();
    req.setN(10);
    // b (first) gets 10, a (second) gets 20.
    CHECK(req.send().wait(sys.io.waitScope).getTotal() == 10 + 1020);
    CHECK(sys.main<Counter>("b").getRequest().send().wait(sys.io.waitScope).getTotal() == 10);
    CHECK(sys.main<Counter>("a").getRequest().send().wait(sys.io.waitScope).getTotal() == 1020);
  }
}

}  // namespace
}  // namespace nb
