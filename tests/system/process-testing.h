// Test support: run a built binary from the runfiles tree and capture its exit status and
// output (for end-to-end tests of the nestbed command).
#pragma once

#include <catch2/catch.hpp>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <string>

namespace nb::testing {

// A workspace-relative path inside this test's runfiles.
inline std::string runfile(const std::string& rel) {
  return std::string(getenv("TEST_SRCDIR")) + "/nestbed/" + rel;
}

struct ProcessResult {
  int status;        // exit status, -1 if killed by a signal
  std::string out;   // what the process printed (see `redirect`)
};

// Runs `binary args` through the shell; `redirect` says where stderr goes ("2>&1": into `out`).
inline ProcessResult runProcess(const std::string& binary, const std::string& args,
                                const char* redirect = "2>&1") {
  std::string cmd = runfile(binary) + " " + args + " " + redirect;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace nb::testing
