// The nestbed CLI end to end (with the fixture registry): exit statuses, messages, DOT, JSON.

#include "interfaces/composer.capnp.h"
#include "interfaces/report.capnp.h"
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

#include <regex>
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

TEST_CASE("CLI: scenario file errors exit 1 before anything runs", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto syntax = nestbed("run " + manifest + " " + path("tests/system/scenarios/bad-syntax.capnp"));
  INFO(syntax.out);
  CHECK(syntax.status == 1);
  CHECK(syntax.out.find("bad-syntax.capnp:7:") != std::string::npos);
  CHECK(syntax.out.find("bad-syntax.capnp:8:") != std::string::npos);
  auto semantic = nestbed("run " + manifest + " " + path("tests/system/scenarios/bad-semantics.capnp"));
  CHECK(semantic.status == 1);
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

// ---- As `bazel run` runs it: BUILD_WORKING_DIRECTORY is where the user typed the command,
// the working directory is elsewhere (the runfiles tree; here "/").

std::string readAll(const std::string& file) {
  FILE* f = fopen(file.c_str(), "rb");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

void copyFile(const std::string& from, const std::string& to) {
  auto text = readAll(from);
  REQUIRE(!text.empty());
  FILE* f = fopen(to.c_str(), "wb");
  REQUIRE(f != nullptr);
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
}

bool exists(const std::string& file) { return access(file.c_str(), F_OK) == 0; }

// A fresh directory with the fixture manifest and a scenario in it, as a user's own would be.
std::string userDirectory(const char* base) {
  std::string dir = std::string(base) + "/nestbed-user-XXXXXX";
  REQUIRE(mkdtemp(&dir[0]) != nullptr);
  copyFile(path("tests/system/manifests/fixture.toml"), dir + "/m.toml");
  copyFile(path("tests/system/scenarios/all-pass.capnp"), dir + "/s.capnp");
  copyFile(path("tests/system/scenarios/params.capnp"), dir + "/p.capnp");
  return dir;
}

nb::testing::ProcessResult asBazelRun(const std::string& dir, const std::string& args) {
  std::string cmd = "cd / && BUILD_WORKING_DIRECTORY=" + dir + " " +
                    path("tests/fixtures/fixture-nestbed") + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_CASE("CLI under bazel run: inputs and outputs are relative to where the user typed", "[cli]") {
  auto dir = userDirectory(getenv("TEST_TMPDIR"));
  auto run = asBazelRun(dir, "run --dump-memory mem.img --trace run.json m.toml s.capnp");
  INFO(run.out);
  CHECK(run.status == 0);
  CHECK(exists(dir + "/mem.img"));
  CHECK(exists(dir + "/mem.img.json"));
  CHECK(exists(dir + "/run.json"));
  CHECK(!exists("/mem.img"));

  bool gnuplot = system("command -v gnuplot > /dev/null 2>&1") == 0;
  auto compare = asBazelRun(dir, "compare --repeat 1 --csv c.csv --trace c.json " +
                                     std::string(gnuplot ? "--plot c.svg " : "") + "m.toml m.toml s.capnp");
  INFO(compare.out);
  CHECK(compare.status == 0);
  CHECK(exists(dir + "/c.csv"));
  CHECK(exists(dir + "/c.json"));
  if (gnuplot) CHECK(exists(dir + "/c.svg"));

  auto sweep = asBazelRun(dir, "sweep --csv w.csv --param components.counter.start=5,6 m.toml p.capnp "
                               "--define n=1");
  INFO(sweep.out);
  CHECK(sweep.status == 0);
  CHECK(exists(dir + "/w.csv"));

  // The manifest's memory file too (a path in the manifest, relative to where one typed).
  auto text = readAll(dir + "/m.toml");
  auto at = text.find("size = \"16MiB\"");
  REQUIRE(at != std::string::npos);
  text.insert(at, "file = \"phys.img\"\n");
  FILE* f = fopen((dir + "/file.toml").c_str(), "w");
  REQUIRE(f != nullptr);
  fputs(text.c_str(), f);
  fclose(f);
  auto backed = asBazelRun(dir, "run file.toml s.capnp");
  INFO(backed.out);
  CHECK(backed.status == 0);
  CHECK(exists(dir + "/phys.img"));

  // A missing input is named where it was looked for, not found somewhere else.
  auto missing = asBazelRun(dir, "run m.toml nosuch.capnp");
  CHECK(missing.status == 1);
  CHECK(missing.out.find(dir + "/nosuch.capnp") != std::string::npos);
}

TEST_CASE("CLI under bazel run: serve's socket is relative to where the user typed", "[cli]") {
  auto dir = userDirectory("/tmp");   // unix socket paths are limited to 108 bytes
  std::string socket = dir + "/root.sock";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string bin = path("tests/fixtures/fixture-nestbed");
    setenv("BUILD_WORKING_DIRECTORY", dir.c_str(), 1);
    if (chdir("/") != 0) _exit(126);
    execl(bin.c_str(), bin.c_str(), "serve", "--socket", "root.sock", "m.toml", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 500 && !exists(socket); i++) usleep(10000);
  CHECK(exists(socket));
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (auto f : {"/m.toml", "/s.capnp", "/p.capnp"}) unlink((dir + f).c_str());
  rmdir(dir.c_str());
}

TEST_CASE("CLI: a scenario parameter no scenario uses is an error with a did-you-mean", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/params.capnp");
  auto run = nestbed("run " + manifest + " " + scenario + " --define n=1 --define addz=2");
  INFO(run.out);
  CHECK(run.status == 1);
  CHECK(run.out.find("scenario parameter 'addz' is not used by " + scenario +
                     " (did you mean 'adds'?); parameters: adds, n") != std::string::npos);
  CHECK(run.out.find("PASS") == std::string::npos);   // nothing ran

  auto sweep = nestbed("sweep " + manifest + " " + scenario + " --define n=1 --param scenario.addz=1,2");
  INFO(sweep.out);
  CHECK(sweep.status == 1);
  CHECK(sweep.out.find("scenario parameter 'addz' is not used") != std::string::npos);
  CHECK(sweep.out.find("did you mean 'adds'?") != std::string::npos);

  auto ok = nestbed("sweep " + manifest + " " + scenario + " --define n=1 --param scenario.adds=1,2");
  INFO(ok.out);
  CHECK(ok.status == 0);
}

TEST_CASE("CLI: call arguments are parsed before anything runs", "[cli]") {
  auto r = nestbed("run " + path("tests/system/manifests/fixture.toml") + " " +
                   path("tests/system/scenarios/bad-args.capnp"));
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find("bad-args.capnp:8:1: args \"(n = 1, bogus = 2)\" are not parameters of add: "
                   "8-13: Struct has no field named 'bogus'") != std::string::npos);
  CHECK(r.out.find("bad-args.capnp:9:1: args \"(n = \"seven\")\" are not parameters of add") !=
        std::string::npos);
  CHECK(r.out.find("bad-args.capnp:15:1: args \"(m = $t)\" are not parameters of add") !=
        std::string::npos);
  CHECK(r.out.find(":7:1:") == std::string::npos);    // the good ones are not named
  CHECK(r.out.find(":11:1:") == std::string::npos);
  CHECK(r.out.find(":14:1:") == std::string::npos);
  CHECK(r.out.find("PASS") == std::string::npos);     // nothing ran
  CHECK(r.out.find("FAIL") == std::string::npos);
}

TEST_CASE("CLI: each step's counter changes, known by construction, inline and process-placed",
          "[cli]") {
  auto placement = GENERATE(as<std::string>(), "", "--set components.counter.placement=inline");
  DYNAMIC_SECTION("placement: " << (placement.empty() ? "as in the manifest" : placement)) {
    auto r = nestbed("run " + placement + " " + path("tests/system/manifests/fixture.toml") + " " +
                     path("tests/system/scenarios/deltas.capnp"));
    INFO(r.out);
    REQUIRE(r.status == 0);
    // Under each step's line (and its modeled time), up to the next step's: what it recorded,
    // then what it changed — instances in start order, then hw/mem.
    auto under = [&](const std::string& step) {
      auto at = r.out.find(step);
      REQUIRE(at != std::string::npos);
      auto from = r.out.find('\n', at) + 1;
      auto to = from;
      while (to < r.out.size() && r.out.compare(to, 7, "  ok   ") != 0 &&
             r.out.compare(to, 7, "  FAIL ") != 0 && r.out.compare(to, 7, "  PASS:") != 0) {
        to = r.out.find('\n', to) + 1;
        if (to == 0) to = r.out.size();
      }
      return r.out.substr(from, to - from);
    };
    auto has = [](const std::string& block, const std::string& part) {
      INFO(block);
      CHECK(block.find(part) != std::string::npos);
    };
    has(under("line 9    counter.add"), "\n           counter.adds +1, counter.total +2\n");
    has(under("line 10   repeat 3x"), "\n           counter.adds +3, counter.total +3, relay.relayed +3\n");
    has(under("line 11     relay.addVia x3"), "\n           counter.adds +3, counter.total +3, relay.relayed +3\n");
    CHECK(under("line 13   nothing happens").find("counter.") == std::string::npos);
    auto frame = under("line 14   counter.allocFrame");
    has(frame, "         record frame = 0x40");
    has(frame, "\n           counter.frames_held +1, memory.used_bytes +4096\n");
    has(under("line 16   print"), "         print: the frame is at 0x40");
    // A refused call changes nothing, and its errno is recorded without failing.
    auto refused = under("line 17   counter.tryAdd");
    has(refused, "         record refused = (errno = eOverflow, total = 10)\n");
    CHECK(refused.find("counter.adds") == std::string::npos);
  }
}

TEST_CASE("CLI: compare and sweep tables carry each step's counter changes", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto csv = std::string(getenv("TEST_TMPDIR")) + "/deltas.csv";
  auto r = nestbed("compare --repeat 2 --csv " + csv + " " + manifest + " " + manifest + " " +
                   path("tests/system/scenarios/deltas.capnp"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("deltas.capnp:10 repeat 3x: relay.relayed") != std::string::npos);
  auto text = readAll(csv);
  INFO(text);
  auto file = path("tests/system/scenarios/deltas.capnp");
  CHECK(text.find("\nstep_counter," + file + ",counter.adds,9,1,1,1,1,1,1,1,0,0\n") != std::string::npos);
  CHECK(text.find("\nstep_counter," + file + ",relay.relayed,10,3,3,3,3,3,3,1,0,0\n") != std::string::npos);
  CHECK(text.find("\nstep_counter," + file + ",memory.used_bytes,14,4096,4096,4096,4096,4096,4096,1,0,0\n") !=
        std::string::npos);
}

TEST_CASE("CLI: one exit-status contract: invalid input 1, a wrong command line 2", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto typo = path("tests/system/manifests/typo.toml");
  auto scenario = path("tests/system/scenarios/all-pass.capnp");
  // An invalid manifest: 1 in every subcommand.
  CHECK(nestbed("check " + typo).status == 1);
  CHECK(nestbed("graph " + typo).status == 1);
  CHECK(nestbed("run " + typo + " " + scenario).status == 1);
  CHECK(nestbed("call " + typo + " counter get").status == 1);
  CHECK(nestbed("serve --socket /tmp/x.sock " + typo).status == 1);
  CHECK(nestbed("compare " + typo + " " + manifest + " " + scenario).status == 1);
  CHECK(nestbed("sweep --param components.counter.start=1,2 " + typo + " " + scenario).status == 1);
  // A wrong command line: 2.
  CHECK(nestbed("run --frobnicate " + manifest).status == 2);
  CHECK(nestbed("call " + manifest).status == 2);
  CHECK(nestbed("serve " + manifest).status == 2);
  CHECK(nestbed("sweep " + manifest + " " + scenario).status == 2);
}

TEST_CASE("CLI: call names what does not exist, without internal assertion text", "[cli]") {
  auto manifest = path("tests/system/manifests/fixture.toml");
  auto instance = nestbed("call " + manifest + " countr get");
  INFO(instance.out);
  CHECK(instance.status == 1);
  CHECK(instance.out.find("nestbed call: no instance 'countr' in the manifest (did you mean 'counter'?); "
                          "instances: counter, relay, memory") != std::string::npos);
  CHECK(instance.out.find("expected") == std::string::npos);
  auto method = nestbed("call " + manifest + " counter gte");
  INFO(method.out);
  CHECK(method.status == 1);
  CHECK(method.out.find("has no method 'gte' (did you mean 'get'?); methods: add, get,") != std::string::npos);
  auto args = nestbed("call " + manifest + " counter add '(m = 1)'");
  INFO(args.out);
  CHECK(args.status == 1);
  CHECK(args.out.find("nestbed call: args \"(m = 1)\" are not parameters of add") != std::string::npos);
}

TEST_CASE("CLI: --version and every report record the build, the manifest as run, the parameters",
          "[cli]") {
  auto version = nestbed("--version");
  INFO(version.out);
  CHECK(version.status == 0);
  CHECK(std::regex_search(version.out, std::regex("^nestbed ([0-9a-f]{12}(-dirty)?|unknown) "
                                                  "\\((fastbuild|opt|dbg)\\)\n")));
  auto build = version.out.substr(0, version.out.find('\n'));

  auto manifest = path("tests/system/manifests/fixture.toml");
  auto scenario = path("tests/system/scenarios/params.capnp");
  auto text = nestbed("run --set components.counter.start=40 --define n=1 " + manifest + " " + scenario);
  INFO(text.out);
  REQUIRE(text.status == 0);
  CHECK(text.out.rfind(build + "\nmanifest " + manifest + " --set components.counter.start=40\n"
                       "scenario parameter n=1\ntiming profile ", 0) == 0);

  auto json = nestbed("run --json --set components.counter.start=40 --define n=1 " + manifest + " " + scenario);
  REQUIRE(json.status == 0);
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<nb::rpc::RunReport>();
  codec.decode(kj::StringPtr(json.out.c_str() + json.out.find('{')), report);
  auto provenance = report.getProvenance();
  CHECK(provenance.getVersion() == build.c_str());
  CHECK(std::string(provenance.getBuildMode().cStr()).size() > 0);
  REQUIRE(provenance.getManifests().size() == 1);
  auto m = provenance.getManifests()[0];
  CHECK(m.getFile() == manifest.c_str());
  REQUIRE(m.getOverrides().size() == 1);
  CHECK(m.getOverrides()[0] == "components.counter.start=40");
  CHECK(std::string(m.getEffective().cStr()).find("start = 40") != std::string::npos);
  CHECK(std::string(m.getEffective().cStr()).find("start = 5") == std::string::npos);
  REQUIRE(provenance.getParams().size() == 1);
  CHECK(provenance.getParams()[0] == "n=1");
  CHECK(std::string(provenance.getTiming().cStr()).find(" (") != std::string::npos);   // "name (origin)"

  auto csv = std::string(getenv("TEST_TMPDIR")) + "/provenance.csv";
  auto compare = nestbed("compare --repeat 1 --csv " + csv + " --define n=1 --set components.counter.start=40 " +
                         manifest + " " + manifest + " " + scenario);
  INFO(compare.out);
  REQUIRE(compare.status == 0);
  CHECK(compare.out.find("  " + build + "\n") != std::string::npos);
  CHECK(compare.out.find("  --define n=1\n") != std::string::npos);
  auto rows = readAll(csv);
  INFO(rows);
  CHECK(rows.find("\nprovenance,version," + build + ",0\n") != std::string::npos);
  CHECK(rows.find("\nprovenance,set B,components.counter.start=40,0\n") != std::string::npos);
  CHECK(rows.find("\nprovenance,define,n=1,0\n") != std::string::npos);
}

TEST_CASE("CLI: run --junit writes one test case per step, failures with expected and actual",
          "[cli]") {
  auto xml = std::string(getenv("TEST_TMPDIR")) + "/steps.xml";
  auto r = nestbed("run --junit " + xml + " " + path("tests/system/manifests/fixture.toml") + " " +
                   path("tests/system/scenarios/all-fail.capnp"));
  INFO(r.out);
  CHECK(r.status == 1);
  auto text = readAll(xml);
  INFO(text);
  CHECK(text.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"", 0) == 0);
  CHECK(text.find("<testcase name=\"line 8 counter.add\"") != std::string::npos);
  CHECK(text.find("<failure message=\"value: expected (total = 7), actual (total = 6)\">") != std::string::npos);
  CHECK(text.find("</testsuites>\n") != std::string::npos);
}

}  // namespace
