// `nestbed serve` is safe by default: the control socket is 0600 and serves only its user, a
// read-only view serves introspection and nothing else, an existing file is never replaced
// (only a stale socket), and running out of descriptors refuses clients without killing it.

#include "interfaces/composer.capnp.h"
#include "tests/fixtures/fixture.capnp.h"
#include "tests/system/process-testing.h"

#include <capnp/rpc-twoparty.h>
#include <catch2/catch.hpp>
#include <kj/async-io.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

std::string path(const std::string& rel) { return nb::testing::runfile(rel); }

// A temporary directory short enough for unix socket paths (Bazel's TEST_TMPDIR is too deep).
struct TempDir {
  TempDir() {
    char dir[] = "/tmp/nestbed-serve-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    name = dir;
  }
  ~TempDir() { system(("rm -rf " + name).c_str()); }
  std::string name;
};

// `nestbed serve` in the background (the fixture build: a counter and a relay), optionally
// under a descriptor limit.
struct Server {
  Server(const std::string& args, int fdLimit = 0) {
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::string cmd = (fdLimit ? "ulimit -n " + std::to_string(fdLimit) + "; " : std::string()) +
                        "exec " + path("tests/fixtures/fixture-nestbed") + " serve " + args + " " +
                        path("tests/system/manifests/fixture.toml") + " 2>/dev/null";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
  }
  bool waitFor(const std::string& socket) {
    for (int i = 0; i < 1000; i++) {
      struct stat st;
      if (stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
      usleep(10000);
    }
    return false;
  }
  bool alive() { return kill(pid, 0) == 0 && waitpid(pid, &status, WNOHANG) == 0; }
  int stop() {
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_t pid;
  int status = 0;
};

int rawConnect(const std::string& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Lists the instances through `socket`; -1 if the server refused or dropped the connection.
int listInstances(const std::string& socket) {
  auto io = kj::setupAsyncIo();
  auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", socket.c_str())).wait(io.waitScope);
  auto stream = addr->connect().wait(io.waitScope);
  capnp::TwoPartyClient client(*stream);
  auto root = client.bootstrap().castAs<nb::rpc::Root>();
  int n = -1;
  kj::runCatchingExceptions([&]() {
    n = int(root.listRequest().send().wait(io.waitScope).getInstances().size());
  });
  return n;
}

TEST_CASE("serve: the control socket is 0600 and serves its user", "[cli][serve]") {
  TempDir dir;
  auto socket = dir.name + "/root.sock";
  umask(0);   // the mode must not come from the umask
  Server server("--socket " + socket);
  REQUIRE(server.waitFor(socket));
  struct stat st;
  REQUIRE(stat(socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(listInstances(socket) == 2);
  CHECK(server.stop() == 0);
  CHECK(access(socket.c_str(), F_OK) != 0);
  umask(022);
}

TEST_CASE("serve: another user's connection is refused", "[cli][serve]") {
  if (getuid() != 0) {
    WARN("not root: cannot connect as another user here");
    return;
  }
  TempDir dir;
  chmod(dir.name.c_str(), 0755);
  auto socket = dir.name + "/root.sock";
  Server server("--socket " + socket);
  REQUIRE(server.waitFor(socket));
  chmod(socket.c_str(), 0666);   // even if the mode let them in, the peer check does not
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    _exit(listInstances(socket) == -1 ? 0 : 1);
  }
  int status;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) {
    WARN("cannot become another user here (a user namespace without uid 65534)");
  } else {
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(listInstances(socket) == 2);   // its owner still gets in
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: the read-only view serves introspection and refuses control",
          "[cli][serve]") {
  TempDir dir;
  auto socket = dir.name + "/root.sock", view = dir.name + "/view.sock";
  Server server("--socket " + socket + " --view-socket " + view);
  REQUIRE(server.waitFor(socket));
  REQUIRE(server.waitFor(view));
  struct stat st;
  REQUIRE(stat(view.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0666);
  {
    auto io = kj::setupAsyncIo();
    auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", view.c_str())).wait(io.waitScope);
    auto stream = addr->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto root = client.bootstrap().castAs<nb::rpc::Root>();
    CHECK(root.listRequest().send().wait(io.waitScope).getInstances().size() == 2);
    auto get = root.getRequest();
    get.setName("counter");
    auto got = get.send().wait(io.waitScope);
    CHECK(!got.hasMain());
    auto component = got.getComponent();
    CHECK(component.statsRequest().send().wait(io.waitScope).getCounters().size() > 0);
    CHECK(component.infoRequest().send().wait(io.waitScope).getInfo().getImpl() == "fixture/counter");
    CHECK_THROWS(component.mainRequest().send().wait(io.waitScope));
    CHECK_THROWS(component.shutdownRequest().send().wait(io.waitScope));
    CHECK_THROWS(root.memoryRequest().send().wait(io.waitScope));
  }
  // The refused shutdown shut nothing down: the control socket still reaches both instances.
  CHECK(listInstances(socket) == 2);
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: an existing file is never replaced; a stale socket is", "[cli][serve]") {
  TempDir dir;
  auto file = dir.name + "/notes.txt";
  FILE* f = fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  fputs("keep me", f);
  fclose(f);
  auto r = nb::testing::runProcess("tests/fixtures/fixture-nestbed",
                                   "serve --socket " + file + " " + path("tests/system/manifests/fixture.toml"));
  CHECK(r.status == 2);
  CHECK(r.out.find("exists and is not a socket") != std::string::npos);
  f = fopen(file.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[16] = {};
  CHECK(fread(buf, 1, sizeof(buf) - 1, f) == 7);
  fclose(f);

  // A live socket is refused too.
  auto socket = dir.name + "/root.sock";
  Server first("--socket " + socket);
  REQUIRE(first.waitFor(socket));
  auto second = nb::testing::runProcess("tests/fixtures/fixture-nestbed",
                                        "serve --socket " + socket + " " + path("tests/system/manifests/fixture.toml"));
  CHECK(second.status == 2);
  CHECK(second.out.find("another server is listening") != std::string::npos);
  CHECK(listInstances(socket) == 2);   // the first is untouched
  // A stale one (its server killed without cleaning up) is replaced.
  kill(first.pid, SIGKILL);
  waitpid(first.pid, nullptr, 0);
  REQUIRE(access(socket.c_str(), F_OK) == 0);
  Server third("--socket " + socket);
  usleep(200000);
  REQUIRE(third.waitFor(socket));
  CHECK(listInstances(socket) == 2);
  CHECK(third.stop() == 0);
}

TEST_CASE("serve: a socket that cannot be made is a named error, not an abort", "[cli][serve]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto longPath = "/tmp/" + std::string(120, 'a') + ".sock";
  auto tooLong = nb::testing::runProcess("tests/fixtures/fixture-nestbed",
                                         "serve --socket " + longPath + " " + manifest);
  CHECK(tooLong.status == 2);
  CHECK(tooLong.out.find("too long for a unix socket path") != std::string::npos);
  auto noDir = nb::testing::runProcess("tests/fixtures/fixture-nestbed",
                                       "serve --socket /nonexistent-nestbed/x.sock " + manifest);
  CHECK(noDir.status == 1);
  CHECK(noDir.out.find("nestbed serve: ") != std::string::npos);
  CHECK(noDir.out.find("Uncaught") == std::string::npos);
}

TEST_CASE("serve: out of descriptors, new clients are refused and the server lives",
          "[cli][serve]") {
  TempDir dir;
  auto socket = dir.name + "/root.sock";
  Server server("--socket " + socket + " --max-connections 4096", 48);
  REQUIRE(server.waitFor(socket));
  std::vector<int> fds;
  for (int i = 0; i < 80; i++) {
    int fd = rawConnect(socket);
    if (fd >= 0) fds.push_back(fd);
  }
  usleep(300000);   // the server accepts until EMFILE, then backs off
  CHECK(server.alive());
  for (int fd : fds) close(fd);
  usleep(300000);
  CHECK(server.alive());
  CHECK(listInstances(socket) == 2);
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: connections beyond the limit are refused, the others kept", "[cli][serve]") {
  TempDir dir;
  auto socket = dir.name + "/root.sock";
  Server server("--socket " + socket + " --max-connections 2");
  REQUIRE(server.waitFor(socket));
  int a = rawConnect(socket), b = rawConnect(socket);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  usleep(100000);
  CHECK(listInstances(socket) == -1);   // the third is dropped
  close(a);
  usleep(100000);
  CHECK(listInstances(socket) == 2);    // room again
  close(b);
  CHECK(server.stop() == 0);
}

}  // namespace
