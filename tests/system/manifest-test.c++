// Manifest validation: one row per error class, each asserting the message names the file,
// line (and column) and key; plus several errors reported together and --set overrides.

#include "system/runtime/sizes.h"
#include "tests/system/compose-testing.h"

#include <unistd.h>

namespace nb {
namespace {

kj::Array<kj::String> errorsOf(kj::StringPtr text, kj::ArrayPtr<const Override> overrides = nullptr) {
  auto result = parseManifest(text, "bad.toml", testing::testRegistry(), overrides);
  REQUIRE(result.is<kj::Array<ManifestError>>());
  auto& errors = result.get<kj::Array<ManifestError>>();
  return KJ_MAP(e, errors) { return kj::str(e); };
}

constexpr const char* MEMORY = "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\n";

struct ErrorCase {
  const char* what;
  const char* body;      // appended after the [memory] table (3 lines), so line 4 is its first
  const char* expected;  // exact "file:line:col: key: message" prefix
};

TEST_CASE("Manifest: each error class names file, line, column and key", "[manifest]") {
  auto row = GENERATE(values<ErrorCase>({
      {"typo'd component key", "[components.c]\nimpl = \"fixture/counter\"\nstrat = 1\n",
       "bad.toml:6:1: components.c.strat: unknown key 'strat' for 'fixture/counter' (did you mean 'start'?)"},
      {"missing impl", "[components.c]\nplacement = \"inline\"\n",
       "bad.toml:4:1: components.c.impl: missing required key 'impl'"},
      {"unknown implementation", "[components.c]\nimpl = \"fixture/countr\"\n",
       "bad.toml:5:8: components.c.impl: unknown implementation 'fixture/countr' (did you mean 'fixture/counter'?)"},
      {"dangling uses", "[components.r]\nimpl = \"fixture/relay\"\nuses = { counter = \"nope\" }\n",
       "bad.toml:6:20: components.r.uses.counter: no instance named 'nope'"},
      {"unknown role", "[components.r]\nimpl = \"fixture/chain\"\nuses = { nxt = \"r\" }\n",
       "bad.toml:6:10: components.r.uses.nxt: 'fixture/chain' has no role 'nxt' (did you mean 'next'?)"},
      {"missing required role", "[components.r]\nimpl = \"fixture/relay\"\n",
       "bad.toml:4:1: components.r.uses: missing required role 'counter'"},
      {"wiring cycle",
       "[components.a]\nimpl = \"fixture/chain\"\nuses = { next = \"b\" }\n"
       "[components.b]\nimpl = \"fixture/chain\"\nuses = { next = \"a\" }\n",
       "bad.toml:7:1: components.b.uses: wiring cycle: a -> b -> a"},
      {"wrong interface wired", "[components.c]\nimpl = \"fixture/chain\"\n"
       "[components.r]\nimpl = \"fixture/relay\"\nuses = { counter = \"c\" }\n",
       "bad.toml:8:20: components.r.uses.counter: 'c' (fixture/chain) does not serve the interface role 'counter' needs"},
      {"bad placement", "[components.c]\nimpl = \"fixture/counter\"\nplacement = \"elsewhere\"\n",
       "bad.toml:6:13: components.c.placement: must be \"inline\" or \"process\""},
      {"bad setting type", "[components.c]\nimpl = \"fixture/counter\"\nstart = \"ten\"\n",
       "bad.toml:6:9: components.c.start: must be an integer"},
      {"restart without process", "[components.c]\nimpl = \"fixture/counter\"\nrestart = \"on-failure\"\n",
       "bad.toml:6:11: components.c.restart: \"on-failure\" needs placement = \"process\""},
      {"restart of state that cannot be recovered",
       "[components.c]\nimpl = \"fixture/counter\"\nplacement = \"process\"\nrestart = \"on-failure\"\n",
       "bad.toml:7:11: components.c.restart: \"on-failure\" needs an implementation that recovers "
       "its state; fixture/counter keeps it only in its process"},
      {"unknown top-level table", "[compnents.c]\nimpl = \"fixture/counter\"\n",
       "bad.toml:4:2: compnents: unknown top-level table 'compnents' (did you mean 'components'?)"},
      {"unknown hardware model", "[[hw.smmu9]]\nname = \"s\"\n",
       "bad.toml:4:1: hw.s.impl: unknown implementation 'hw/smmu9'"},
      {"duplicate instance name", "[components.x]\nimpl = \"fixture/counter\"\n[[hw.x]]\nname = \"x\"\n",
       "bad.toml:"},  // hw.x is unknown too; the duplicate check is covered below
      {"TOML syntax error", "[components.c\nimpl = 1\n", "bad.toml:4:"},
      {"list role given one name", "[components.f]\nimpl = \"fixture/fanout\"\nuses = { counters = \"c\" }\n",
       "bad.toml:6:21: components.f.uses.counters: role 'counters' takes a list of instance names"},
      {"list element not a name", "[components.f]\nimpl = \"fixture/fanout\"\nuses = { counters = [1] }\n",
       "bad.toml:6:22: components.f.uses.counters.0: must be an instance name (a string)"},
      {"dangling list element",
       "[components.c]\nimpl = \"fixture/counter\"\n"
       "[components.f]\nimpl = \"fixture/fanout\"\nuses = { counters = [\"c\", \"d\"] }\n",
       "bad.toml:8:27: components.f.uses.counters.1: no instance named 'd'"},
      {"list element twice",
       "[components.c]\nimpl = \"fixture/counter\"\n"
       "[components.f]\nimpl = \"fixture/fanout\"\nuses = { counters = [\"c\", \"c\"] }\n",
       "bad.toml:8:27: components.f.uses.counters.1: 'c' is listed twice"},
      {"single role given a list", "[components.r]\nimpl = \"fixture/relay\"\nuses = { counter = [\"c\"] }\n",
       "bad.toml:6:20: components.r.uses.counter: must be an instance name (a string)"},
      {"empty required list role", "[components.f]\nimpl = \"fixture/fanout\"\nuses = { counters = [] }\n",
       "bad.toml:4:1: components.f.uses: missing required role 'counters'"},
      {"reserved instance name", "[components.memory]\nimpl = \"fixture/counter\"\n",
       "bad.toml:4:1: memory: instance name 'memory' is reserved for hw/mem"},
  }));
  DYNAMIC_SECTION(row.what) {
    auto errors = errorsOf(kj::str(MEMORY, row.body));
    bool found = false;
    for (auto& e : errors) found = found || e.startsWith(row.expected);
    INFO("errors:\n" << kj::strArray(errors, "\n").cStr());
    CHECK(found);
  }
}

TEST_CASE("Manifest: memory errors name the memory table's keys", "[manifest]") {
  auto errors = errorsOf("[memory]\nbase = 0x1001\nsize = \"lots\"\nfile = 3\n");
  std::string all = kj::strArray(errors, "\n").cStr();
  INFO(all);
  CHECK(all.find("bad.toml:3:8: memory.size: must be a byte size") != std::string::npos);
  CHECK(all.find("bad.toml:4:8: memory.file: must be a string") != std::string::npos);
  CHECK(errorsOf("[components]\n")[0] == "bad.toml:1:1: memory: missing required table [memory]");
}

TEST_CASE("Manifest: several errors are reported together, nothing planned", "[manifest]") {
  auto errors = errorsOf(kj::str(MEMORY,
                                 "[components.a]\nimpl = \"fixture/counter\"\nstrat = 1\n"
                                 "[components.b]\nimpl = \"fixture/relay\"\nuses = { counter = \"zz\" }\n"
                                 "[components.c]\nimpl = \"nope/nope\"\n"));
  CHECK(errors.size() == 3);
}

TEST_CASE("Manifest: instances are planned in dependency order", "[manifest]") {
  auto plan = testing::planOf(kj::str(MEMORY,
                                      "[components.r]\nimpl = \"fixture/relay\"\nuses = { counter = \"c\" }\n"
                                      "[components.c]\nimpl = \"fixture/counter\"\nplacement = \"process\"\n"));
  REQUIRE(plan.instances.size() == 2);
  CHECK(plan.instances[0].name == "c");
  CHECK(plan.instances[0].placement == Placement::PROCESS);
  CHECK(plan.instances[1].name == "r");
  CHECK(plan.memory.size == 16 << 20);
}

TEST_CASE("Manifest: a list role keeps its instances in manifest order, after each of them",
          "[manifest]") {
  auto plan = testing::planOf(kj::str(MEMORY,
                                      "[components.f]\nimpl = \"fixture/fanout\"\n"
                                      "uses = { counters = [\"b\", \"a\"] }\n"
                                      "[components.a]\nimpl = \"fixture/counter\"\n"
                                      "[components.b]\nimpl = \"fixture/counter\"\n"));
  REQUIRE(plan.instances.size() == 3);
  CHECK(plan.instances[2].name == "f");
  auto& uses = plan.instances[2].uses;
  REQUIRE(uses.size() == 2);
  CHECK(uses[0].role == "counters");
  CHECK(uses[0].target == "b");
  CHECK(uses[1].target == "a");
  CHECK(std::string(formatPlan(plan).cStr()).find("uses counters=b, counters=a") != std::string::npos);
}

TEST_CASE("Manifest: --set overrides a value, and an unknown key is an error naming it", "[manifest]") {
  auto text = kj::str(MEMORY, "[components.c]\nimpl = \"fixture/counter\"\nstart = 1\n");
  Override ok[] = {{kj::str("components.c.start"), kj::str("42")}, {kj::str("memory.size"), kj::str("32MiB")}};
  auto plan = testing::planOf(text, ok);
  CHECK(plan.instances[0].settings["start"].value<int64_t>() == 42);
  CHECK(plan.memory.size == 32 << 20);

  Override typo[] = {{kj::str("components.c.statr"), kj::str("42")}};
  auto errors = errorsOf(text, typo);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "--set: components.c.statr: unknown key 'statr' for 'fixture/counter' (did you mean 'start'?)");

  Override noInstance[] = {{kj::str("components.zz.start"), kj::str("1")}};
  CHECK(errorsOf(text, noInstance)[0] == "--set: components.zz.start: no such table in the manifest");
}

TEST_CASE("Manifest: --set addresses a hardware entry by name or by its array index", "[manifest]") {
  auto text = kj::str(MEMORY, "[[hw.smmuv3]]\nname = \"s0\"\n[[hw.smmuv3]]\nname = \"s1\"\n");
  auto iotlb = [](const Plan& plan, kj::StringPtr name) {
    return KJ_ASSERT_NONNULL(plan.find(name)).settings["iotlb_entries"].value<int64_t>();
  };
  Override byIndex[] = {{kj::str("hw.smmuv3.1.iotlb_entries"), kj::str("64")}};
  auto plan = testing::planOf(text, byIndex);
  CHECK(!iotlb(plan, "s0"));
  CHECK(iotlb(plan, "s1") == 64);
  Override byName[] = {{kj::str("hw.s0.iotlb_entries"), kj::str("32")}};
  CHECK(iotlb(testing::planOf(text, byName), "s0") == 32);

  Override beyond[] = {{kj::str("hw.smmuv3.2.iotlb_entries"), kj::str("64")}};
  CHECK(errorsOf(text, beyond)[0] == "--set: hw.smmuv3.2.iotlb_entries: [[hw.smmuv3]] has 2 entries; no entry 2");
  Override noModel[] = {{kj::str("hw.pci.0.sid_base"), kj::str("1")}};
  CHECK(errorsOf(text, noModel)[0] == "--set: hw.pci.0.sid_base: no [[hw.pci]] in the manifest");
  Override notIndex[] = {{kj::str("hw.smmuv3.x.iotlb_entries"), kj::str("1")}};
  CHECK(errorsOf(text, notIndex)[0] == "--set: hw.smmuv3.x.iotlb_entries: 'x' is not an index into [[hw.smmuv3]]");
  Override typo[] = {{kj::str("hw.smmuv3.0.iotlb_entris"), kj::str("1")}};
  CHECK(errorsOf(text, typo)[0] ==
        "--set: hw.s0.iotlb_entris: unknown key 'iotlb_entris' for 'hw/smmuv3' (did you mean 'iotlb_entries'?)");
}

TEST_CASE("Manifest: sizes accept integers and binary units", "[manifest]") {
  auto plan = testing::planOf("[memory]\nbase = \"1GiB\"\nsize = 8192\n");
  CHECK(plan.memory.base == uint64_t(1) << 30);
  CHECK(plan.memory.size == 8192);
}

TEST_CASE("Sizes: binary units are 2^10 each; \"256MB\" is refused as ambiguous", "[manifest]") {
  struct Row {
    const char* text;
    kj::Maybe<uint64_t> bytes;
  };
  const Row rows[] = {
      {"268435456", uint64_t(268435456)}, {"0x1000", uint64_t(4096)},
      {"256MiB", uint64_t(256) << 20},   {"256M", uint64_t(256) << 20},
      {"256mib", uint64_t(256) << 20},   {"4K", uint64_t(4096)},
      {"1GiB", uint64_t(1) << 30},       {"4096B", uint64_t(4096)},
      {"256MB", nullptr},                {"4KB", nullptr},
      {"1gb", nullptr},                  {"lots", nullptr},
  };
  for (auto& row : rows) {
    INFO(row.text);
    CHECK(parseSize(row.text) == row.bytes);
  }
  auto errors = errorsOf("[memory]\nbase = 0x40000000\nsize = \"256MB\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(std::string(errors[0].cStr()).find("bad.toml:3:8: memory.size: must be a byte size") == 0);
  CHECK(std::string(errors[0].cStr()).find("\"256MB\" is refused as ambiguous") != std::string::npos);
}

TEST_CASE("Manifest: a NUL byte is an error naming where, not the end of the text", "[manifest]") {
  char name[] = "/tmp/nestbed-nul-XXXXXX";
  int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  // The [memory] table, then a NUL on line 4 before a key that must not be lost silently.
  const char text[] = "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\nab\0cd = 1\n";
  REQUIRE(write(fd, text, sizeof(text) - 1) == ssize_t(sizeof(text) - 1));
  close(fd);
  auto result = loadManifest(name, testing::testRegistry());
  unlink(name);
  REQUIRE(result.is<kj::Array<ManifestError>>());
  auto& errors = result.get<kj::Array<ManifestError>>();
  REQUIRE(errors.size() == 1);
  CHECK(kj::str(errors[0]).startsWith(kj::str(name, ":4:3: manifest: a NUL byte")));
}

TEST_CASE("Manifest: [timing] names a profile, overrides costs, refuses what it does not know",
          "[manifest][modeled]") {
  auto plan = testing::planOf(kj::str(MEMORY, "[timing]\nprofile = \"neoverse-trap-hyp\"\n"
                                              "[timing.costs]\nmmio_read = 7\n"));
  CHECK(plan.timing.profile.name == "neoverse-trap-hyp");
  CHECK(plan.timing.profile.ns(Cost::MMIO_READ) == 7);
  CHECK(plan.timing.profile.costs[uint(Cost::MMIO_READ)].status == "override");
  CHECK(plan.timing.enabled);
  CHECK(!testing::planOf(kj::str(MEMORY, "[timing]\nprofile = \"off\"\n")).timing.enabled);
  auto errors = errorsOf(kj::str(MEMORY, "[timing]\nprofile = \"neoverse\"\n"));
  CHECK(errors[0].startsWith("bad.toml:5:11: timing.profile: unknown profile 'neoverse'"));
  errors = errorsOf(kj::str(MEMORY, "[timing.costs]\nmmio_reed = 1\n"));
  CHECK(errors[0] ==
        "bad.toml:5:1: timing.costs.mmio_reed: unknown cost 'mmio_reed' (did you mean 'mmio_read'?)");
  errors = errorsOf(kj::str(MEMORY, "[timing.costs]\nmmio_read = -1\n"));
  CHECK(errors[0] == "bad.toml:5:13: timing.costs.mmio_read: must not be negative (-1)");
  Override set[] = {{kj::str("timing.costs.walk_read"), kj::str("3")}};
  auto result = parseManifest(MEMORY, "m.toml", testing::testRegistry(), set);
  REQUIRE(result.is<Plan>());
  CHECK(result.get<Plan>().timing.profile.ns(Cost::WALK_READ) == 3);
}

TEST_CASE("Manifest: an existing memory file is replaced only with overwrite = true", "[manifest]") {
  char name[] = "/tmp/nestbed-phys-XXXXXX";
  int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  close(fd);
  auto body = kj::str("[memory]\nbase = 0x40000000\nsize = \"16MiB\"\nfile = \"", name, "\"\n");
  auto errors = errorsOf(body);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == kj::str("bad.toml:4:8: memory.file: '", name,
                             "' exists; set memory.overwrite = true to replace its contents"));
  auto plan = testing::planOf(kj::str(body, "overwrite = true\n"));
  CHECK(KJ_ASSERT_NONNULL(plan.memory.file) == name);
  unlink(name);
  CHECK(testing::planOf(body).memory.file != nullptr);   // a new file needs no flag
}

}  // namespace
}  // namespace nb
