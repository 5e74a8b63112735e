// Fuzz target: the RPC surface of `nestbed serve`. A system composed from the default manifest
// (inline) is served, as serveRoot serves each accepted connection, over a fresh socketpair: a
// TwoPartyClient on one end with the composer's root (first input byte even) or its read-only
// view (odd) as the bootstrap. The remaining bytes are written to the other end as the client's
// byte stream, which is then closed; the server runs until it drops the connection (a
// malformed message ends it; EOF ends it) or a second has passed. Whatever the bytes ask (any
// method on any capability, in any order), the server must answer or disconnect, never crash.

#include "system/cli/serve.h"
#include "tests/fuzz/harness.h"

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>

namespace {
kj::Promise<void> drain(kj::AsyncIoStream& stream, kj::ArrayPtr<kj::byte> buffer) {
  return stream.tryRead(buffer.begin(), 1, buffer.size())
      .then([&stream, buffer](size_t n) -> kj::Promise<void> {
        if (n == 0) return kj::READY_NOW;   // EOF
        return drain(stream, buffer);
      });
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  nb::fuzz::init(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool view = data[0] & 1;
  auto io = kj::setupAsyncIo();
  nb::Composer composer(io, nb::fuzz::registry(), nb::fuzz::inlinePlan("default.toml"),
                        nb::ComposerOptions{kj::str("(inline only)"), [](kj::StringPtr) {}});
  composer.start().wait(io.waitScope);
  {
    auto pipe = io.provider->newTwoWayPipe();
    auto root = composer.root();
    capnp::Capability::Client bootstrap = view ? nb::readOnlyRoot(root) : root;
    capnp::TwoPartyClient server(*pipe.ends[0], kj::mv(bootstrap),
                                 capnp::rpc::twoparty::Side::SERVER);
    auto& client = *pipe.ends[1];
    auto finished =
        client.write(data + 1, size - 1)
            .then([&client]() { client.shutdownWrite(); })
            .then([]() {}, [](kj::Exception&&) {})   // the server may hang up first
            .then([&server, &io]() {
              return server.onDisconnect().exclusiveJoin(
                  io.provider->getTimer().afterDelay(1 * kj::SECONDS));
            })
            .then([]() {}, [](kj::Exception&&) {});
    // The client reads (and drops) whatever the server answers, so the server never blocks on a
    // full socket.
    kj::byte buffer[4096];
    auto reading = drain(client, buffer).then(
        []() -> kj::Promise<void> { return kj::NEVER_DONE; },
        [](kj::Exception&&) -> kj::Promise<void> { return kj::NEVER_DONE; });
    finished.exclusiveJoin(kj::mv(reading)).wait(io.waitScope);
  }
  composer.shutdown().wait(io.waitScope);
  return 0;
}
