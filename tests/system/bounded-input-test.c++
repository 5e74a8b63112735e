// Bounded input, end to end with the shipped nestbed: text too deep or too large for a
// recursive parser is refused before parsing with a named error (it overflowed the stack: exit
// 139), `repeat` counts have limits, a manifest has a size limit, and `check` finds what only a
// start finds, naming file:line, without side effects.

#include "system/script/runner.h"
#include "tests/system/process-testing.h"
#include "util/text-bounds.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>
#include <string>

namespace {

using nb::testing::runfile;

nb::testing::ProcessResult nestbed(const std::string& args) {
  return nb::testing::runProcess("system/nestbed", args);
}

std::string scratch(const std::string& name, const std::string& text) {
  auto path = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

const std::string HEADER =
    "@0xd0a1c2b3e4f50617;\nusing import \"/interfaces/scenario.capnp\".Scenario;\n";
const std::string CONST = "const scenario :Scenario = (steps = [";

bool has(const std::string& out, const std::string& what) {
  return out.find(what) != std::string::npos;
}

TEST_CASE("Bounds: a scan counts brackets outside strings and comments, and says where",
          "[bounds]") {
  struct Row {
    std::string text;
    unsigned maxDepth;
    uint32_t line, column;   // 0, 0: within the bounds
  };
  const Row rows[] = {
      {"((()))", 3, 0, 0},
      {"((()))", 2, 1, 3},                       // the third '(' is one too deep
      {"[{(x)}]", 2, 1, 3},                      // every bracket kind counts
      {"(\"((((\")", 1, 0, 0},                   // inside a string: not counted
      {"(\"\\\"(((\")", 1, 0, 0},                // an escaped quote does not end the string
      {"( # ((((\n)", 1, 0, 0},                  // inside a comment: not counted
      {"(\n (\n  (", 2, 3, 3},                   // line and column of the one too deep
      {")))(((", 3, 0, 0},                       // stray closers never go below zero
  };
  for (auto& row : rows) {
    INFO(row.text);
    auto e = nb::textBoundsError(kj::ArrayPtr<const char>(row.text.data(), row.text.size()),
                                 1000, row.maxDepth);
    if (row.line == 0) {
      CHECK(e == nullptr);
    } else {
      auto& error = KJ_ASSERT_NONNULL(e);
      CHECK(error.line == row.line);
      CHECK(error.column == row.column);
      CHECK(std::string(error.message.cStr()) ==
            "brackets nested more than " + std::to_string(row.maxDepth) + " deep");
    }
  }
  auto big = nb::textBoundsError(kj::ArrayPtr<const char>("abcdef", 6), 5, 10);
  CHECK(std::string(KJ_ASSERT_NONNULL(big).message.cStr()) ==
        "6 bytes is more than the limit of 5 bytes");
}

TEST_CASE("Bounds: 800 nested repeats are a scenario error naming line and column, not a crash",
          "[bounds][cli]") {
  std::string inner = "(check = void)";
  const std::string open = "(repeat = (count = 1, steps = [";
  for (int i = 0; i < 800; i++) inner = open + inner + "]))";
  auto file = scratch("deep.capnp", HEADER + CONST + inner + "]);\n");
  auto r = nestbed("run " + runfile("system/manifests/default.toml") + " " + file);
  INFO(r.out);
  CHECK(r.status == 1);
  // `(steps = [` is depth 2 and each repeat opens 3: the 129th bracket is the first of the
  // 43rd repeat, on line 3.
  auto column = CONST.size() + 42 * open.size() + 1;
  CHECK(has(r.out, file + ":3:" + std::to_string(column) +
                       ": scenario text too large to parse: brackets nested more than 128 deep"));
  CHECK(!has(r.out, "does not declare an ID"));   // nothing of the unparsed text's parse
}

TEST_CASE("Bounds: 20,000 nested parentheses in call arguments are an error, not a crash",
          "[bounds][cli]") {
  auto args = std::string(20000, '(') + std::string(20000, ')');
  auto r = nestbed("call " + runfile("system/manifests/default.toml") + " memory alloc '" +
                   args + "'");
  INFO(r.out.substr(0, 2000));
  CHECK(r.status == 1);
  CHECK(has(r.out, "args of alloc are too deep to parse: brackets nested more than 128 deep "
                   "at column 129"));
  // The same text as a scenario step's args: refused by the check, with the step's line.
  auto file = scratch("deep-args.capnp",
                      HEADER + CONST + "\n  (call = (target = \"memory\", method = \"alloc\", "
                                       "args = \"" + args + "\"))]);\n");
  auto s = nestbed("run " + runfile("system/manifests/default.toml") + " " + file);
  INFO(s.out.substr(0, 2000));
  CHECK(s.status == 1);
  CHECK(has(s.out, file + ":4:1: args of alloc are too deep to parse"));
}

TEST_CASE("Bounds: repeat counts and nested repeats past their limits are check errors",
          "[bounds][cli]") {
  auto file = scratch("counts.capnp",
                      HEADER + CONST + "\n  (repeat = (count = 4000000000, steps = [(check = void)])),"
                      "\n  (repeat = (count = 10000, steps = ["
                      "\n    (repeat = (count = 10000, steps = [(check = void)]))])),"
                      "\n  (repeat = (count = 1000000, steps = [(check = void)]))]);\n");
  auto r = nestbed("run " + runfile("system/manifests/default.toml") + " " + file);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(has(r.out, file + ":4:1: repeat count 4000000000 is more than the limit of " +
                       std::to_string(nb::MAX_REPEAT_COUNT)));
  CHECK(has(r.out, file + ":6:1: repeat count 10000 inside repeats of 10000 iterations runs its "
                       "steps more than the limit of " +
                       std::to_string(nb::MAX_REPEAT_ITERATIONS) + " times"));
  CHECK(!has(r.out, file + ":5:1:"));   // 10,000 alone is fine
  CHECK(!has(r.out, file + ":7:1:"));   // so is exactly the limit
}

TEST_CASE("Bounds: a manifest larger than the limit is refused before it is parsed",
          "[bounds][cli]") {
  std::string text = "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\n";
  std::string comment = "# " + std::string(98, 'x') + "\n";
  while (text.size() <= nb::MAX_MANIFEST_BYTES) text += comment;
  auto file = scratch("big.toml", text);
  auto r = nestbed("check " + file);
  INFO(r.out.substr(0, 2000));
  CHECK(r.status == 1);
  CHECK(has(r.out, file + ": manifest: too large: " + std::to_string(text.size()) +
                       " bytes is more than the limit of 1048576 bytes"));
}

TEST_CASE("check: what only a start finds is an error naming the instance's file:line",
          "[bounds][cli]") {
  // A 52-bit OAS needs the 64K granule (hw/README.md): each setting is valid alone.
  auto file = scratch("oas52.toml",
                      "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\n\n"
                      "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"process\"\n"
                      "oas = 52\ngran64k = false\n");
  auto check = nestbed("check " + file);
  INFO(check.out);
  CHECK(check.status == 1);
  CHECK(has(check.out, "nestbed check: " + file + ":5:1: starting 'smmu0' (hw/smmuv3): "));
  CHECK(has(check.out, "52-bit OAS needs the 64K granule"));
  // `run` names the same place.
  auto run = nestbed("run " + file);
  INFO(run.out);
  CHECK(run.status == 1);
  CHECK(has(run.out, file + ":5:1: starting 'smmu0' (hw/smmuv3): "));
}

TEST_CASE("check: the trial start writes no memory file and starts no process", "[bounds][cli]") {
  auto image = std::string(getenv("TEST_TMPDIR")) + "/check-memory.img";
  auto file = scratch("file.toml",
                      "[memory]\nbase = 0x40000000\nsize = \"16MiB\"\nfile = \"" + image + "\"\n\n"
                      "[[hw.smmuv3]]\nname = \"smmu0\"\nplacement = \"process\"\n");
  auto r = nestbed("check " + file);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(has(r.out, "smmu0"));
  struct stat st;
  CHECK(stat(image.c_str(), &st) != 0);
}

}  // namespace
