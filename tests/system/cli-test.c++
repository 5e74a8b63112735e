// The nestbed CLI end to end (with the fixture registry): exit statuses, messages, DOT, JSON.

#include "interfaces/composer.capnp.h"
#include "tests/system/process-testing.h"
#include "tests/fixtures/fixture.capnp.h"

#include <capnp/compat/json.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <signal.h>
#include <unistd.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <string>

namespace {

using nb::testing::runfile;

// The nestbed CLI built with the fixture components; stderr is captured too.
nb::testing::ProcessResult nestbed(const std::string& args) {
  return nb::testing::runProcess("tests/fixtures/fixture-nestbed", args);
}

std::string path(const char* rel) { return runfile(rel); }

TEST_CASE("CLI: check exits 0 and prints the plan", "[cli]") {
  auto r = nestbed("check " + path("tests/system/manifests/fixture.toml"));
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("1. counter  fixture/counter  process") != std::string::npos);
  CHECK(r.out.find("2. relay  fixture/relay  inline  uses counter=counter") != std::string::npos);
}

TEST_CASE("CLI: a typo'd key exits 1 and names the key, file and line", "[cli]") {
  auto manifest = path("tests/system/manifests/typo.toml");
  auto r = nestbed("check " + manifest);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find(manifest + ":7:1: components.counter.strat: unknown key 'strat'") != std::string::npos);
}

TEST_CASE("CLI: usage errors exit 2", "[cli]") {
  CHECK(nestbed("frobnicate").status == 2);
  CHECK(nestbed("check").status == 2);
  auto help = nestbed("run --help");
  CHECK(help.status == 0);
  CHECK(help.out.find("--dump-memory") != std::string::npos);
}

TEST_CASE("CLI: graph prints DOT that dot accepts", "[cli]") {
  auto r = nestbed("graph " + path("tests/system/manifests/fixture.toml"));
  REQUIRE(r.status == 0);
  CHECK(r.out.find("\"relay\" -> \"counter\" [label=\"counter\"]") != std::string::npos);
  FILE* dot = popen("dot -Tsvg > /dev/null", "w");
  REQUIRE(dot != nullptr);
  fputs(r.out.c_str(), dot);
  int status = pclose(dot);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("CLI: run exits 0 when every expectation holds, 1 naming the line when one fails", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto pass = nestbed("run " + manifest + " " + path("tests/system/scenarios/all-pass.capnp"));
  INFO(pass.out);
  CHECK(pass.status == 0);
  CHECK(pass.out.find("PASS: 17 steps, 0 failed") != std::string::npos);
  CHECK(pass.out.find("counter (fixture/counter)") != std::string::npos);  // stats follow

  auto fail = nestbed("run " + manifest + " " + path("tests/system/scenarios/all-fail.capnp"));
  INFO(fail.out);
  CHECK(fail.status == 1);
  CHECK(fail.out.find("all-fail.capnp:8: value: expected (total = 7), actual (total = 6)") != std::string::npos);
}

TEST_CASE("CLI: scenario file errors exit 2 before anything runs", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto syntax = nestbed("run " + manifest + " " + path("tests/system/scenarios/bad-syntax.capnp"));
  INFO(syntax.out);
  CHECK(syntax.status == 2);
  CHECK(syntax.out.find("bad-syntax.capnp:7:") != std::string::npos);
  CHECK(syntax.out.find("bad-syntax.capnp:8:") != std::string::npos);
  auto semantic = nestbed("run " + manifest + " " + path("tests/system/scenarios/bad-semantics.capnp"));
  CHECK(semantic.status == 2);
  CHECK(semantic.out.find("bad-semantics.capnp:7:1: no instance 'countr' in the manifest") != std::string::npos);
}

TEST_CASE("CLI: run --json prints the report through Cap'n Proto's JSON codec", "[cli]") {
  auto r = nestbed("run --json " + path("tests/system/manifests/fixture.toml") + " " +
                   path("tests/system/scenarios/all-pass.capnp"));
  REQUIRE(r.status == 0);
  auto start = r.out.find('{');
  REQUIRE(start != std::string::npos);
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto value = message.initRoot<capnp::JsonValue>();
  codec.decodeRaw(kj::StringPtr(r.out.c_str() + start), value);
  CHECK(value.isObject());
  CHECK(r.out.find("\"ok\": true") != std::string::npos);
}

TEST_CASE("CLI: call prints the results as Cap'n Proto text; --set overrides", "[cli]") {
  auto r = nestbed("call --set components.counter.start=40 " + path("tests/system/manifests/fixture.toml") +
                   " counter add '(n = 2)'");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("(total = 42)") != std::string::npos);
}

TEST_CASE("CLI: --dump-memory writes the image and a JSON sidecar", "[cli]") {
  std::string image = std::string(getenv("TEST_TMPDIR")) + "/mem.img";
  auto r = nestbed("run --dump-memory " + image + " " + path("tests/system/manifests/fixture.toml"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  FILE* f = fopen(image.c_str(), "rb");
  REQUIRE(f != nullptr);
  fseek(f, 0, SEEK_END);
  CHECK(ftell(f) == 16 << 20);
  fclose(f);
  FILE* j = fopen((image + ".json").c_str(), "r");
  REQUIRE(j != nullptr);
  char buf[512] = {};
  CHECK(fread(buf, 1, sizeof(buf) - 1, j) > 0);
  fclose(j);
  CHECK(std::string(buf).find("\"base\": \"1073741824\"") != std::string::npos);
}

TEST_CASE("CLI: serve exposes the root capability on a unix socket to external clients", "[cli]") {
  // Unix socket paths are limited to 108 bytes: Bazel's TEST_TMPDIR is too deep.
  char dir[] = "/tmp/nestbed-serve-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string socket = std::string(dir) + "/root.sock";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string bin = path("tests/fixtures/fixture-nestbed");
    std::string manifest = path("tests/system/manifests/fixture.toml");
    execl(bin.c_str(), bin.c_str(), "serve", "--socket", socket.c_str(), manifest.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 500 && access(socket.c_str(), F_OK) != 0; i++) usleep(10000);
  {
    auto io = kj::setupAsyncIo();
    auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", socket.c_str())).wait(io.waitScope);
    auto stream = addr->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto root = client.bootstrap().castAs<nb::rpc::Root>();
    auto list = root.listRequest().send().wait(io.waitScope);
    REQUIRE(list.getInstances().size() == 2);
    CHECK(list.getInstances()[0].getName() == "counter");
    auto get = root.getRequest();
    get.setName("relay");
    auto relay = get.send().getMain().castAs<nb::fixture::Relay>();
    auto add = relay.addViaRequest();
    add.setN(3);
    CHECK(add.send().wait(io.waitScope).getTotal() == 8);
  }
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(access(socket.c_str(), F_OK) != 0);  // removed on exit
  rmdir(dir);
}

}  // namespace
