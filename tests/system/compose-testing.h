// Test support: compose a manifest (text) with the shipped registry plus the fixtures, with
// process-placed instances served by tests/fixtures:fixture-host.
#pragma once

#include "system/composer/composer.h"
#include "system/registry.h"
#include "tests/fixtures/fixtures.h"

#include <catch2/catch.hpp>
#include <kj/async-unix.h>
#include <stdlib.h>

namespace nb::testing {

inline kj::String fixtureHostPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  REQUIRE(srcdir != nullptr);
  return kj::str(srcdir, "/nestbed/tests/fixtures/fixture-host");
}

inline Registry& testRegistry() {
  static Registry* registry = []() {
    auto r = new Registry;
    addBuiltinTypes(*r);
    fixture::addFixtureTypes(*r);
    return r;
  }();
  return *registry;
}

inline Plan planOf(kj::StringPtr text, kj::ArrayPtr<const Override> overrides = nullptr) {
  auto result = parseManifest(text, "test.toml", testRegistry(), overrides);
  if (result.is<kj::Array<ManifestError>>()) {
    for (auto& e : result.get<kj::Array<ManifestError>>()) FAIL_CHECK(kj::str(e).cStr());
    FAIL("manifest did not validate");
  }
  return kj::mv(result.get<Plan>());
}

// One composed system with its own event loop. Create one per test case.
struct TestSystem {
  static kj::AsyncIoContext setup() {
    kj::UnixEventPort::captureChildExit();
    return kj::setupAsyncIo();
  }

  explicit TestSystem(kj::StringPtr manifest, kj::ArrayPtr<const Override> overrides = nullptr)
      : io(setup()),
        composer(io, testRegistry(), planOf(manifest, overrides),
                 ComposerOptions{fixtureHostPath(), [this](kj::StringPtr e) { events.add(kj::heapString(e)); }}) {
    composer.start().wait(io.waitScope);
    root = composer.root();
  }
  ~TestSystem() noexcept(false) {
    if (!shutDown) composer.shutdown().wait(io.waitScope);
  }

  template <typename T>
  typename T::Client main(kj::StringPtr name) {
    auto req = root.getRequest();
    req.setName(name);
    return req.send().getMain().template castAs<T>();
  }
  kj::Array<InstanceStats> stats() { return composer.stats().wait(io.waitScope); }
  void shutdown() {
    composer.shutdown().wait(io.waitScope);
    shutDown = true;
  }
  // Waits (bounded) until the composer has reported `n` events.
  void waitForEvents(size_t n) {
    for (int i = 0; i < 500 && events.size() < n; i++) {
      io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
    }
  }

  kj::AsyncIoContext io;
  kj::Vector<kj::String> events;
  Composer composer;
  rpc::Root::Client root = nullptr;
  bool shutDown = false;
};

}  // namespace nb::testing
