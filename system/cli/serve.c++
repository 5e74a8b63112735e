// `nestbed serve`. See serve.h.

#include "system/cli/serve.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace nb {

namespace {

// ---- the read-only view

class ViewComponent final : public rpc::Component::Server {
public:
  explicit ViewComponent(rpc::Component::Client inner) : inner(kj::mv(inner)) {}

protected:
  kj::Promise<void> main(MainContext) override {
    KJ_FAIL_REQUIRE("read-only view: an instance's main capability needs the control socket");
  }
  kj::Promise<void> info(InfoContext context) override {
    return inner.infoRequest().send().then(
        [context](auto&& r) mutable { context.getResults().setInfo(r.getInfo()); });
  }
  kj::Promise<void> stats(StatsContext context) override {
    return inner.statsRequest().send().then(
        [context](auto&& r) mutable { context.getResults().setCounters(r.getCounters()); });
  }
  kj::Promise<void> structures(StructuresContext context) override {
    return inner.structuresRequest().send().then([context](auto&& r) mutable {
      context.getResults().setStructures(r.getStructures());
    });
  }
  kj::Promise<void> shutdown(ShutdownContext) override {
    KJ_FAIL_REQUIRE("read-only view: shutdown needs the control socket");
  }

private:
  rpc::Component::Client inner;
};

class ViewRoot final : public rpc::Root::Server {
public:
  explicit ViewRoot(rpc::Root::Client inner) : inner(kj::mv(inner)) {}

protected:
  kj::Promise<void> list(ListContext context) override {
    return inner.listRequest().send().then(
        [context](auto&& r) mutable { context.getResults().setInstances(r.getInstances()); });
  }
  kj::Promise<void> get(GetContext context) override {
    auto req = inner.getRequest();
    req.setName(context.getParams().getName());
    return req.send().then([context](auto&& r) mutable {
      context.getResults().setComponent(kj::heap<ViewComponent>(r.getComponent()));
    });
  }
  kj::Promise<void> memory(MemoryContext) override {
    KJ_FAIL_REQUIRE("read-only view: physical memory needs the control socket");
  }

private:
  rpc::Root::Client inner;
};

// ---- sockets

// One listening socket: accepts connections, checks who they come from, serves `bootstrap`.
class SocketServer final : public kj::TaskSet::ErrorHandler {
public:
  SocketServer(kj::Timer& timer, kj::Own<kj::ConnectionReceiver> listener,
               capnp::Capability::Client bootstrap, bool ownerOnly, uint32_t maxConnections,
               kj::StringPtr path)
      : timer(timer), listener(kj::mv(listener)), bootstrap(kj::mv(bootstrap)),
        ownerOnly(ownerOnly), maxConnections(maxConnections), path(path), tasks(*this) {}

  kj::Promise<void> run() {
    // accept() may throw at once (EMFILE): evalNow makes that a rejection handled below.
    return kj::evalNow([this]() { return listener->accept(); }).then(
        [this](kj::Own<kj::AsyncIoStream> stream) {
          serve(kj::mv(stream));
          return run();
        },
        [this](kj::Exception&& e) -> kj::Promise<void> {
          // Out of descriptors (EMFILE), or another transient failure: refuse this one, keep
          // serving the connections already open, and try again.
          fprintf(stderr, "nestbed: serve %s: accept failed (%s); retrying in 100 ms\n",
                  path.cStr(), e.getDescription().cStr());
          return timer.afterDelay(100 * kj::MILLISECONDS).then([this]() { return run(); });
        });
  }

private:
  struct Connection {
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyClient> rpc;   // after `stream`: destroyed first
  };

  void serve(kj::Own<kj::AsyncIoStream> stream) {
    if (ownerOnly) {
      struct ucred peer {};
      uint length = sizeof(peer);
      bool known = true;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
        stream->getsockopt(SOL_SOCKET, SO_PEERCRED, &peer, &length);
      })) {
        known = false;
      }
      if (!known || peer.uid != getuid()) {
        fprintf(stderr, "nestbed: serve %s: refused a connection from uid %d (only uid %d may "
                "use this socket; --view-socket serves a read-only view to others)\n",
                path.cStr(), known ? int(peer.uid) : -1, int(getuid()));
        return;
      }
    }
    if (live >= maxConnections) {
      fprintf(stderr, "nestbed: serve %s: refused a connection: %u already open (the limit)\n",
              path.cStr(), live);
      return;
    }
    live++;
    auto connection = kj::heap<Connection>();
    connection->rpc = kj::heap<capnp::TwoPartyClient>(*stream, bootstrap,
                                                      capnp::rpc::twoparty::Side::SERVER);
    connection->stream = kj::mv(stream);
    auto done = connection->rpc->onDisconnect();
    tasks.add(done.attach(kj::mv(connection), kj::defer([this]() { live--; })));
  }

  void taskFailed(kj::Exception&& e) override {
    fprintf(stderr, "nestbed: serve %s: a connection failed: %s\n", path.cStr(),
            e.getDescription().cStr());
  }

  kj::Timer& timer;
  kj::Own<kj::ConnectionReceiver> listener;
  capnp::Capability::Client bootstrap;
  bool ownerOnly;
  uint32_t maxConnections;
  kj::StringPtr path;
  uint32_t live = 0;
  kj::TaskSet tasks;
};

kj::Own<kj::ConnectionReceiver> listenAt(kj::AsyncIoContext& io, kj::StringPtr path, mode_t mode) {
  // Created with `mode` from the start (no window with the umask's), then set exactly.
  mode_t old = umask(0777 & ~mode);
  KJ_DEFER(umask(old));
  auto address = io.provider->getNetwork().parseAddress(kj::str("unix:", path)).wait(io.waitScope);
  auto listener = address->listen();
  KJ_SYSCALL(chmod(path.cStr(), mode), path);
  return listener;
}

}  // namespace

kj::Maybe<kj::String> prepareSocketPath(kj::StringPtr path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return kj::str(path, ": ", path.size(), " bytes is too long for a unix socket path (at most ",
                   sizeof(sockaddr_un::sun_path) - 1, ")");
  }
  struct stat st;
  if (lstat(path.cStr(), &st) != 0) {
    if (errno == ENOENT) return nullptr;
    return kj::str(path, ": ", strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return kj::str(path, " exists and is not a socket; not replacing it");
  }
  // A socket: in use if something accepts a connection on it, stale otherwise.
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.cStr(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return kj::str("socket(): ", strerror(errno));
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (live) return kj::str(path, ": another server is listening on this socket");
  if (unlink(path.cStr()) != 0) return kj::str(path, ": cannot remove the stale socket: ", strerror(errno));
  return nullptr;
}

rpc::Root::Client readOnlyRoot(rpc::Root::Client root) {
  return kj::heap<ViewRoot>(kj::mv(root));
}

void serveRoot(kj::AsyncIoContext& io, Composer& composer, const ServeOptions& options) {
  auto& timer = io.provider->getTimer();
  auto control = kj::heap<SocketServer>(timer, listenAt(io, options.socket, 0600), composer.root(),
                                        true, options.maxConnections, options.socket);
  kj::Promise<void> serving = control->run();
  kj::Own<SocketServer> view;
  KJ_IF_MAYBE(v, options.viewSocket) {
    view = kj::heap<SocketServer>(timer, listenAt(io, *v, 0666), readOnlyRoot(composer.root()),
                                  false, options.maxConnections, *v);
    serving = serving.exclusiveJoin(view->run());
  }
  fprintf(stderr, "nestbed: serving %s on %s (mode 0600, this user only)%s\n",
          composer.plan().file.cStr(), options.socket.cStr(),
          options.viewSocket == nullptr ? "" : kj::str("; read-only view on ",
                                                       KJ_ASSERT_NONNULL(options.viewSocket))
                                                   .cStr());
  io.unixEventPort.captureSignal(SIGINT);
  io.unixEventPort.captureSignal(SIGTERM);
  auto stop = io.unixEventPort.onSignal(SIGINT).exclusiveJoin(io.unixEventPort.onSignal(SIGTERM));
  serving.exclusiveJoin(stop.ignoreResult()).wait(io.waitScope);
  view = nullptr;
  control = nullptr;
  unlink(options.socket.cStr());
  KJ_IF_MAYBE(v, options.viewSocket) { unlink(v->cStr()); }
}

}  // namespace nb
