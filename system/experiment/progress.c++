// Progress on stderr. See progress.h.

#include "system/experiment/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace nb::experiment {

namespace {

constexpr size_t BAR_WIDTH = 30;

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Progress::Progress(kj::StringPtr command, size_t total, FILE* out)
    : command_(kj::heapString(command)), total_(total), out_(out), tty_(out != nullptr && isatty(fileno(out)) != 0),
      began_(std::chrono::steady_clock::now()), runBegan_(began_) {}

Progress::~Progress() { done(); }

void Progress::draw(kj::StringPtr what) {
  size_t filled = total_ ? finished_ * BAR_WIDTH / total_ : BAR_WIDTH;
  char bar[BAR_WIDTH + 1];
  for (size_t i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  auto line = kj::str(command_, " [", kj::StringPtr(bar), "] ", finished_, "/", total_, " ",
                      uint64_t(secondsSince(began_)), "s ", what);
  // A line longer than the terminal would wrap, and \r would no longer go back to its start.
  struct winsize size;
  if (ioctl(fileno(out_), TIOCGWINSZ, &size) == 0 && size.ws_col > 1 && line.size() >= size.ws_col) {
    line = kj::heapString(line.slice(0, size.ws_col - 1));
  }
  // \r and "erase to end of line": the bar is redrawn in place.
  fprintf(out_, "\r%s\x1b[K", line.cStr());
  fflush(out_);
}

void Progress::starting(kj::StringPtr what) {
  runBegan_ = std::chrono::steady_clock::now();
  if (tty_) draw(what);
}

void Progress::finished(kj::StringPtr what, kj::StringPtr outcome) {
  finished_++;
  if (tty_) {
    draw(kj::str(what, ": ", outcome));
  } else if (out_ != nullptr) {
    double seconds = secondsSince(runBegan_);
    fprintf(out_, "%s: %zu/%zu %s: %s (%.*f %s)\n", command_.cStr(), finished_, total_, what.cStr(),
            outcome.cStr(), seconds < 1 ? 0 : 2, seconds < 1 ? seconds * 1000 : seconds, seconds < 1 ? "ms" : "s");
    fflush(out_);
  }
}

void Progress::done() {
  if (tty_ && total_ != 0) {
    fputs("\r\x1b[K", out_);
    fflush(out_);
  }
  total_ = 0;
}

}  // namespace nb::experiment
