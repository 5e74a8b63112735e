// tests/hw/vm: the [[hw.vm]] manifest entry — every memslot problem reported with file, line,
// column and key.

#include "tests/hw/hw-testing.h"

namespace nb::hw::testing {
namespace {

constexpr kj::StringPtr HEAD =
    "[memory]\nbase = 0x80000000\nsize = \"64MiB\"\n\n"
    "[[hw.vm]]\nname = \"vm0\"\n"_kj;  // 6 lines

std::string errorsText(kj::StringPtr rest) {
  return kj::strArray(manifestErrors(kj::str(HEAD, rest)), "\n").cStr();
}

TEST_CASE("hw/vm: every memslot error is reported with file, line, column and key", "[vm]") {
  auto errors = errorsText(
      "memslots = [\n"                                                           // 7
      "  { slot = 0, gpa = 0, size = \"2MiB\", pa = \"allocate\" },\n"           // 8
      "  { slot = 0, gpa = 0x200000, size = 4096, pa = \"allocate\" },\n"        // 9
      "  { slot = 2, gpa = 0x1000, size = 4096, pa = \"allocate\" },\n"          // 10
      "  { slot = 3, gpa = 0x1234, size = 0x3000, pa = \"allocate\" },\n"        // 11
      "  { slot = 4, gpa = 0x400000, size = 0, pa = \"allocate\" },\n"           // 12
      "  { slot = 5, gpa = 0x500000, size = \"4KiB\", pa = 0x84000000 },\n"      // 13
      "  { slot = 6, gpa = 0x600000, size = \"8KiB\", pa = 0x83fff000 },\n"      // 14
      "  { slot = 7, gpa = 0x700000, size = 4096, pa = 0x80000800 },\n"          // 15
      "  { slot = 8, gpa = 0x800000, size = 4096, pa = \"alloc\" },\n"           // 16
      "  { slot = 9, gpa = 0x2000000, size = \"4MiB\", pa = 0x81000000 },\n"     // 17
      "  { slot = 10, gpa = 0xa00000, size = 4096, pa = 0x81100000 },\n"         // 18
      "  { slot = 40000, gpa = 0xb00000, size = 4096, pa = \"allocate\" },\n"    // 19
      "  { slot = 12, gpa = 0xfffffffff000, size = 0x2000, pa = \"allocate\", readonly = 1 },\n"
      "  { slot = 13, gpa = 0x10000000000000, size = 4096, pa = \"allocate\" },\n"  // 21
      "  { slot = 14, size = 4096, pa = \"allocate\", ro = true },\n"            // 22
      "  \"slot 15\",\n"                                                         // 23
      "]\n"
      "ipa_bits = 56\n");  // 25
  std::string expected =
      kj::strArray(
          kj::arr(
              // settings in key order; within memslots, pass 1: each entry on its own
              kj::str("test.toml:25:12: hw.vm0.ipa_bits: must be between 32 and 52"),
              kj::str("test.toml:11:21: hw.vm0.memslots.3.gpa: 0x1234 is not 4 KiB aligned"),
              kj::str("test.toml:12:38: hw.vm0.memslots.4.size: must be a non-zero multiple of "
                      "4 KiB"),
              kj::str("test.toml:13:51: hw.vm0.memslots.5.pa: the backing [0x84000000, "
                      "0x84001000) is outside physical memory [0x80000000, 0x84000000)"),
              kj::str("test.toml:14:51: hw.vm0.memslots.6.pa: the backing [0x83fff000, "
                      "0x84001000) is outside physical memory [0x80000000, 0x84000000)"),
              kj::str("test.toml:15:49: hw.vm0.memslots.7.pa: 0x80000800 is not 4 KiB aligned"),
              kj::str("test.toml:16:49: hw.vm0.memslots.8.pa: must be a physical address or "
                      "\"allocate\""),
              kj::str("test.toml:19:12: hw.vm0.memslots.11.slot: must be a slot id, 0..32767"),
              kj::str("test.toml:20:81: hw.vm0.memslots.12.readonly: must be true or false"),
              kj::str("test.toml:21:22: hw.vm0.memslots.13.gpa: the slot [0x10000000000000, "
                      "0x10000000001000) reaches past the largest guest-physical space (2^52)"),
              kj::str("test.toml:22:51: hw.vm0.memslots.14.ro: unknown key 'ro'; a memslot has "
                      "slot, gpa, size, pa, readonly"),
              kj::str("test.toml:22:3: hw.vm0.memslots.14.gpa: missing required key 'gpa' (the "
                      "guest-physical base)"),
              kj::str("test.toml:23:3: hw.vm0.memslots.15: must be a table: { slot = 0, gpa = 0, "
                      "size = \"64MiB\", pa = \"allocate\" }"),
              // pass 2: between entries
              kj::str("test.toml:9:12: hw.vm0.memslots.1.slot: duplicate slot 0 (also "
                      "memslots.0)"),
              kj::str("test.toml:10:21: hw.vm0.memslots.2.gpa: the GPA range [0x1000, 0x2000) "
                      "overlaps [0x0, 0x200000) of memslots.0"),
              kj::str("test.toml:18:50: hw.vm0.memslots.10.pa: the backing [0x81100000, "
                      "0x81101000) overlaps the backing [0x81000000, 0x81400000) of memslots.9")),
          "\n")
          .cStr();
  CHECK(errors == expected);
}

TEST_CASE("hw/vm: memslots must be an array of tables; no memslots is a VM without memory",
          "[vm]") {
  CHECK(errorsText("memslots = { slot = 0 }\n") ==
        "test.toml:7:12: hw.vm0.memslots: must be an array");
  CHECK(errorsText("").empty());
  CHECK(errorsText("memslots = []\nipa_bits = 32\n").empty());
  // A bad [memory] leaves fixed backings unchecked rather than checked against nonsense.
  CHECK(std::string(kj::strArray(manifestErrors("[memory]\nbase = 0x80000000\n\n[[hw.vm]]\n"
                                                "name = \"vm0\"\nmemslots = [{ slot = 0, gpa = 0, "
                                                "size = 4096, pa = 0x1000 }]\n"),
                                 "\n")
                        .cStr()) == "test.toml:1:1: memory.size: missing required key 'size'");
}

}  // namespace
}  // namespace nb::hw::testing
