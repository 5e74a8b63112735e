// system/host: one component in its own process. See host.h.

#include "system/host/host.h"

#include "interfaces/host.capnp.h"

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <toml++/toml.h>
#include <unistd.h>

namespace nb {
namespace {

// Forwards the lifecycle to the component, and ends the process once it has shut down.
class HostedComponent final : public rpc::Component::Server {
public:
  HostedComponent(rpc::Component::Client inner, kj::Own<kj::PromiseFulfiller<void>> done)
      : inner_(kj::mv(inner)), done_(kj::mv(done)) {}

protected:
  kj::Promise<void> main(MainContext c) override { return forward(c, inner_.mainRequest()); }
  kj::Promise<void> info(InfoContext c) override { return forward(c, inner_.infoRequest()); }
  kj::Promise<void> stats(StatsContext c) override { return forward(c, inner_.statsRequest()); }
  kj::Promise<void> structures(StructuresContext c) override {
    return forward(c, inner_.structuresRequest());
  }
  kj::Promise<void> shutdown(ShutdownContext c) override {
    return inner_.shutdownRequest().send().then([this](auto&&) { done_->fulfill(); });
  }

private:
  template <typename Context, typename Request>
  kj::Promise<void> forward(Context& context, Request&& request) {
    return context.tailCall(kj::mv(request));
  }

  rpc::Component::Client inner_;
  kj::Own<kj::PromiseFulfiller<void>> done_;
};

class HostServer final : public rpc::ComponentHost::Server {
public:
  HostServer(const Registry& registry, PhysMem& mem, kj::Timer& timer, ModeledClock& clock,
             kj::Own<kj::PromiseFulfiller<void>> done)
      : registry_(registry), mem_(mem), timer_(timer), clock_(clock), done_(kj::mv(done)) {}

protected:
  kj::Promise<void> start(StartContext context) override {
    KJ_REQUIRE(context_ == nullptr, "this host already runs a component");
    auto params = context.getParams();
    auto impl = params.getImpl();
    auto& type = KJ_REQUIRE_NONNULL(registry_.find(impl), "host does not know this implementation", impl);
    try {
      settings_ = toml::parse(std::string_view(params.getSettings().begin(), params.getSettings().size()));
    } catch (const toml::parse_error& e) {
      KJ_FAIL_REQUIRE("bad settings from the composer", e.what());
    }
    instance_ = kj::heapString(params.getInstance());
    auto ctx = kj::heap<ComponentContext>(instance_, type, settings_, mem_, params.getFrames(), timer_,
                                          clock_);
    for (auto b : params.getUses()) ctx->bind(b.getRole(), b.getCap());
    auto& ref = *ctx;
    context_ = kj::mv(ctx);
    return type.factory(ref).then([this, context](rpc::Component::Client component) mutable {
      context.getResults().setComponent(kj::heap<HostedComponent>(kj::mv(component), kj::mv(done_)));
    });
  }

private:
  const Registry& registry_;
  PhysMem& mem_;
  kj::Timer& timer_;
  ModeledClock& clock_;
  kj::Own<kj::PromiseFulfiller<void>> done_;
  kj::String instance_;
  toml::table settings_;
  kj::Maybe<kj::Own<ComponentContext>> context_;
};

class HostMain {
public:
  HostMain(kj::ProcessContext& context, const Registry& registry)
      : context_(context), registry_(registry) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context_, "nestbed-host",
                           "Runs one nestbed component for the composer. Not run by hand: the "
                           "composer starts it for every instance with placement = \"process\".")
        .addOptionWithArg({"socket-fd"}, KJ_BIND_METHOD(*this, setSocketFd), "<fd>", "RPC socket")
        .addOptionWithArg({"mem-fd"}, KJ_BIND_METHOD(*this, setMemFd), "<fd>", "physical memory")
        .addOptionWithArg({"mem-base"}, KJ_BIND_METHOD(*this, setMemBase), "<pa>", "memory base")
        .addOptionWithArg({"mem-size"}, KJ_BIND_METHOD(*this, setMemSize), "<bytes>", "memory size")
        .addOptionWithArg({"name"}, KJ_BIND_METHOD(*this, setName), "<instance>", "for messages")
        .addOptionWithArg({"clock-fd"}, KJ_BIND_METHOD(*this, setClockFd), "<fd>", "modeled clock")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

private:
  kj::MainBuilder::Validity setSocketFd(kj::StringPtr v) { socketFd_ = v.parseAs<int>(); return true; }
  kj::MainBuilder::Validity setMemFd(kj::StringPtr v) { memFd_ = v.parseAs<int>(); return true; }
  kj::MainBuilder::Validity setMemBase(kj::StringPtr v) { memBase_ = v.parseAs<uint64_t>(); return true; }
  kj::MainBuilder::Validity setMemSize(kj::StringPtr v) { memSize_ = v.parseAs<uint64_t>(); return true; }
  kj::MainBuilder::Validity setName(kj::StringPtr v) { name_ = kj::heapString(v); return true; }
  kj::MainBuilder::Validity setClockFd(kj::StringPtr v) { clockFd_ = v.parseAs<int>(); return true; }

  kj::MainBuilder::Validity run() {
    if (socketFd_ < 0 || memFd_ < 0 || memSize_ == 0) return "--socket-fd, --mem-fd and --mem-size are required";
    PhysMem mem(memFd_, PhysMem::FdOwnership::OWNED, memBase_, memSize_);
    // The composer's clock page; without one (a host started by hand) nothing is charged.
    kj::Own<ModeledClock> ownClock;
    ModeledClock* clock = &ModeledClock::off();
    if (clockFd_ >= 0) {
      ownClock = ModeledClock::attach(clockFd_);
      clock = ownClock.get();
    }
    auto io = kj::setupAsyncIo();
    auto stream = io.lowLevelProvider->wrapSocketFd(socketFd_, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    auto done = kj::newPromiseAndFulfiller<void>();
    capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
    auto server = capnp::makeRpcServer(
        network, kj::heap<HostServer>(registry_, mem, io.provider->getTimer(), *clock,
                                      kj::mv(done.fulfiller)));
    // Ends when the component has shut down (let the reply flush first) or the composer is gone.
    done.promise.then([&io]() { return io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS); })
        .exclusiveJoin(network.onDisconnect())
        .wait(io.waitScope);
    return true;
  }

  kj::ProcessContext& context_;
  const Registry& registry_;
  int socketFd_ = -1;
  int memFd_ = -1;
  int clockFd_ = -1;
  uint64_t memBase_ = 0;
  uint64_t memSize_ = 0;
  kj::String name_;
};

}  // namespace

int hostMain(int argc, char* argv[], const Registry& registry) {
  kj::TopLevelProcessContext context(argv[0]);
  HostMain main(context, registry);
  return kj::runMainAndExit(context, main.getMain(), argc, argv);
}

}  // namespace nb
