// Progress of a compare or sweep on stderr: a bar redrawn in place when stderr is a terminal,
// one plain line per finished run otherwise (logs, CI, tests).

#pragma once

#include <kj/string.h>
#include <stdio.h>
#include <chrono>

namespace nb::experiment {

class Progress {
public:
  Progress(kj::StringPtr command, size_t total, FILE* out = stderr);   // out null: silent
  ~Progress();

  void starting(kj::StringPtr what);          // a run begins: "B run 2", "iotlb_entries=64"
  void finished(kj::StringPtr what, kj::StringPtr outcome);   // "ok", "FAIL", ...
  void done();                                 // clears the bar

private:
  void draw(kj::StringPtr what);

  kj::String command_;
  size_t total_;
  size_t finished_ = 0;
  FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point began_, runBegan_;
};

}  // namespace nb::experiment
