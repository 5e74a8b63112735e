// tests/bench: how the single-threaded figures are measured and printed.
//
// Owns: the clocks (thread CPU time, CLOCK_THREAD_CPUTIME_ID, which a loaded machine's other
// threads do not inflate; and wall time, CLOCK_MONOTONIC), repetitions collected side by side so
// that variants can be interleaved, and the `name: value unit (spread)` lines. A figure is the
// median of its repetitions, printed with their min-max; never the best of them.

#pragma once

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

namespace nb::bench {

inline double clockSeconds(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// One timed interval in both clocks.
struct Interval {
  double cpu = 0, wall = 0;
};

template <typename F>
Interval timed(F&& body) {
  const double c0 = clockSeconds(CLOCK_THREAD_CPUTIME_ID), w0 = clockSeconds(CLOCK_MONOTONIC);
  body();
  return Interval{clockSeconds(CLOCK_THREAD_CPUTIME_ID) - c0, clockSeconds(CLOCK_MONOTONIC) - w0};
}

struct Spread {
  double median, min, max;
};

inline Spread spreadOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return Spread{median, v.front(), v.back()};
}

// Repetitions of one figure: a value per repetition in each clock (per-operation time, a rate,
// or a ratio of two interleaved measurements).
struct Samples {
  std::vector<double> cpu, wall;
  void add(double c, double w) {
    cpu.push_back(c);
    wall.push_back(w);
  }
};

// `name: median unit (min-max over N, thread CPU)` and the same in wall time as `name_wall`.
inline void print(const char* name, const char* unit, const Samples& s, int precision = 1,
                  double scale = 1) {
  const Spread c = spreadOf(s.cpu), w = spreadOf(s.wall);
  printf("%s: %.*f %s (min-max %.*f-%.*f, median of %zu, thread CPU)\n", name, precision,
         c.median * scale, unit, precision, c.min * scale, precision, c.max * scale, s.cpu.size());
  printf("%s_wall: %.*f %s (min-max %.*f-%.*f, median of %zu, wall)\n", name, precision,
         w.median * scale, unit, precision, w.min * scale, precision, w.max * scale,
         s.wall.size());
}

}  // namespace nb::bench
