// gnuplot figures. See plot.h.

#include "system/experiment/plot.h"

#include "system/experiment/measurements.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <algorithm>
#include <cmath>
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nb::experiment {

namespace {

using Row = rpc::ExperimentReport::Row;

constexpr size_t DEFAULT_FIGURES = 8;
constexpr size_t LABEL_WIDTH = 60;   // bar labels, in characters (the left margin fits them)

// A gnuplot string literal: single quotes, where '' stands for one quote.
kj::String quoted(kj::StringPtr s) {
  kj::Vector<char> out;
  out.add('\'');
  for (char c : s) {
    if (c == '\'') out.add('\'');
    if (c == '\n') c = ' ';
    out.add(c);
  }
  out.add('\'');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

// A string inside a datablock: double quotes, which it must not contain.
kj::String dataString(kj::StringPtr s) {
  auto copy = kj::heapString(s);
  for (char& c : copy) if (c == '"' || c == '\n') c = '\'';
  return kj::str('"', copy, '"');
}

kj::String num(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.9g", v);
  return kj::str(buf);
}

kj::String figureName(Row::Reader row, bool step) {
  auto name = rowName(row, step);
  size_t i = 0;
  while (i < name.size() && name[i] == ' ') i++;
  return kj::heapString(name.slice(i));
}

kj::String header(size_t height) {
  return kj::str("set terminal svg size 960,", height,
                 " dynamic noenhanced font 'Helvetica,11' background rgb 'white'\n");
}

// The figure's provenance, at its foot: the build, the overrides, the scenario parameters.
kj::String caption(rpc::ExperimentReport::Reader report) {
  auto provenance = report.getProvenance();
  kj::Vector<kj::String> parts;
  parts.add(kj::heapString(provenance.getVersion()));
  if (provenance.getTiming().size() > 0) parts.add(kj::str("timing ", provenance.getTiming()));
  for (auto o : report.getOverrides()) parts.add(kj::str("--set ", o));
  for (auto p : provenance.getParams()) parts.add(kj::str("--define ", p));
  return kj::str("set label 99 ", quoted(kj::strArray(parts, "  ")),
                 " at screen 0.005,0.004 left font ',8' textcolor rgb 'gray40'");
}

// ---- compare: B/A bars

struct Bar {
  kj::String label;
  double ratio;
  // The spread: every run of A and of B over A's median (empty when A's median is 0).
  kj::Vector<double> runsA, runsB;
};

Bar barOf(Row::Reader r, bool step) {
  Bar bar{figureName(r, step), r.getRatio()};
  auto cells = r.getCells();
  if (cells.size() == 2 && cells[0].getPresent() && cells[0].getMedian() > 0) {
    double a = cells[0].getMedian();
    for (auto x : cells[0].getSamples()) bar.runsA.add(x / a);
    for (auto x : cells[1].getSamples()) bar.runsB.add(x / a);
  }
  return bar;
}

size_t panelHeight(size_t bars) { return 110 + 20 * bars; }

kj::String barPanel(kj::StringPtr name, kj::StringPtr title, kj::ArrayPtr<const Bar> bars, double originY,
                    double sizeY) {
  double lo = 0.5, hi = 2;
  for (auto& b : bars) {
    if (std::isfinite(b.ratio) && b.ratio > 0) {
      lo = kj::min(lo, b.ratio / 1.5);
      hi = kj::max(hi, b.ratio * 1.5);
    }
  }
  kj::Vector<kj::String> out;
  out.add(kj::str("$", name, " << EOD"));
  for (auto i : kj::indices(bars)) {
    double r = bars[i].ratio;
    kj::String text;
    double drawn = r;
    if (std::isnan(r)) {
      text = kj::str("missing");
      drawn = 1;
    } else if (std::isinf(r)) {
      text = kj::str("A = 0");
      drawn = hi / 1.2;
    } else if (r == 0) {
      text = kj::str("B = 0");
      drawn = lo * 1.2;
    } else {
      char buf[32];
      snprintf(buf, sizeof(buf), "%.3g", r);
      text = kj::str(buf);
    }
    auto label = bars[i].label.size() <= LABEL_WIDTH
                     ? kj::heapString(bars[i].label)
                     : kj::str(bars[i].label.slice(0, LABEL_WIDTH - 3), "...");
    out.add(kj::str(i, " ", dataString(label), " ", num(drawn), " ", dataString(text)));
  }
  out.add(kj::str("EOD"));
  // Each run as a dot: A's grey, B's black, at its ratio to A's median.
  out.add(kj::str("$", name, "_runs << EOD"));
  bool anyRuns = false;
  for (auto i : kj::indices(bars)) {
    for (auto x : bars[i].runsA) {
      if (x > 0) out.add(kj::str(i, " ", num(kj::max(lo, kj::min(hi, x))), " 0"));
      anyRuns = anyRuns || x > 0;
    }
    for (auto x : bars[i].runsB) {
      if (x > 0) out.add(kj::str(i, " ", num(kj::max(lo, kj::min(hi, x))), " 1"));
      anyRuns = anyRuns || x > 0;
    }
  }
  if (!anyRuns) out.add(kj::str("0 1 0"));   // gnuplot refuses an empty block
  out.add(kj::str("EOD"));
  out.add(kj::str("set origin 0,", num(originY)));
  out.add(kj::str("set size 1,", num(sizeY)));
  out.add(kj::str("set title ", quoted(title)));
  out.add(kj::str("unset key"));
  out.add(kj::str("set logscale x 2"));
  out.add(kj::str("set format x '%g'"));
  out.add(kj::str("set xrange [", num(lo), ":", num(hi), "]"));
  out.add(kj::str("set yrange [", bars.size(), "-0.5:-0.5]"));
  out.add(kj::str("set ytics scale 0 font ',9'"));
  out.add(kj::str("set grid xtics"));
  out.add(kj::str("set lmargin ", LABEL_WIDTH * 3 / 4));
  out.add(kj::str("set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead lc rgb 'black' dt 2"));
  out.add(kj::str("plot $", name,
                  " using 3:1:($3<1?$3:1):($3<1?1:$3):($1-0.35):($1+0.35):ytic(2) with boxxyerror "
                  "fs solid 0.5 lc rgb '#4477aa', \\\n  $",
                  name, " using ($3<1?1:$3):1:4 with labels left offset 0.6,0 font ',9', \\\n  $",
                  name, "_runs using 2:1:($3 > 0 ? 0x000000 : 0x999999) with points pt 7 ps 0.35 "
                  "lc rgb variable"));
  out.add(kj::str("unset arrow 1"));
  return kj::str(kj::strArray(out, "\n"), "\n");
}

kj::String compareScript(rpc::ExperimentReport::Reader report, kj::StringPtr svgPath) {
  kj::Vector<Bar> steps, counters;
  for (auto r : report.getSteps()) steps.add(barOf(r, true));
  for (auto r : report.getCounters()) {
    if (r.getDiffers()) counters.add(barOf(r, false));
  }
  size_t h1 = panelHeight(kj::max(steps.size(), size_t(1)));
  size_t h2 = counters.empty() ? 0 : panelHeight(counters.size());
  size_t total = h1 + h2;
  auto runs = report.getRepeats();
  kj::Vector<kj::String> out;
  out.add(header(total));
  out.add(kj::str("set output ", quoted(svgPath)));
  auto what = kj::str("B/A of the median over ", runs, " run", runs == 1 ? "" : "s",
                      " each (< 1: B is lower); dots: each run over A's median (grey A, black B)");
  out.add(kj::str("set multiplot"));
  out.add(caption(report));
  auto base = report.getTimeBase() == "wall" ? "wall" : "modeled";
  out.add(barPanel("steps", kj::str(base, " step time per iteration: ", what), steps,
                   double(h2) / total, double(h1) / total));
  if (!counters.empty()) {
    out.add(barPanel("counters", kj::str("counters that differ: ", what), counters, 0, double(h2) / total));
  }
  out.add(kj::str("unset multiplot"));
  return kj::str(kj::strArray(out, "\n"), "\n");
}

// ---- sweep: figures against the value

bool parseNumber(kj::StringPtr text, double& out) {
  if (text.size() == 0) return false;
  char* end = nullptr;
  auto copy = kj::heapString(text);
  if (copy.startsWith("0x") || copy.startsWith("0X")) {
    out = double(strtoull(copy.cStr(), &end, 16));
  } else {
    out = strtod(copy.cStr(), &end);
  }
  return end != nullptr && *end == '\0' && std::isfinite(out);
}

struct Series {
  kj::String name;
  Row::Reader row;
};

// The x of each variant, and the series (line) each belongs to: `series[v]` indexes `names`.
struct Axis {
  kj::Array<double> xs;
  kj::Array<size_t> series;
  kj::Vector<kj::String> names;     // series values in order of appearance ("" without a series)
  kj::Vector<kj::String> ticks;     // categorical: the values, in order of appearance
  bool categorical = false;
  bool logX = false;
};

kj::String sweepPanel(kj::StringPtr prefix, kj::StringPtr title, kj::ArrayPtr<const Series> figures,
                      const Axis& axis, kj::StringPtr param, double originY, double sizeY) {
  kj::Vector<kj::String> out;
  kj::Vector<kj::String> plots;
  bool allPositive = true;
  double lo = INFINITY, hi = 0;
  for (auto i : kj::indices(figures)) {
    auto cells = figures[i].row.getCells();
    for (auto s : kj::indices(axis.names)) {
      auto block = kj::str("$", prefix, i, "_", s);
      out.add(kj::str(block, " << EOD"));
      for (auto v : kj::indices(cells)) {
        auto c = cells[v];
        if (!c.getPresent() || axis.series[v] != s) continue;
        out.add(kj::str(num(axis.xs[v]), " ", num(c.getMedian()), " ", num(c.getMin()), " ", num(c.getMax())));
        if (c.getMin() <= 0) allPositive = false;
        lo = kj::min(lo, c.getMin());
        hi = kj::max(hi, c.getMax());
      }
      out.add(kj::str("EOD"));
      auto name = axis.names[s].size() ? kj::str(figures[i].name, " [", axis.names[s], "]")
                                       : kj::heapString(figures[i].name);
      plots.add(kj::str(block, " using 1:2:3:4 with yerrorlines pt 7 ps 0.6 title ", quoted(name)));
    }
  }
  out.add(kj::str("set origin 0,", num(originY)));
  out.add(kj::str("set size 1,", num(sizeY)));
  out.add(kj::str("set title ", quoted(title)));
  out.add(kj::str("set xlabel ", quoted(param)));
  out.add(kj::str("set key below vertical maxrows ", figures.size() * axis.names.size()));
  out.add(kj::str("set grid"));
  out.add(kj::str(allPositive && lo > 0 && hi / lo >= 100 ? "set logscale y 10" : "unset logscale y"));
  out.add(kj::str(axis.logX ? "set logscale x 2" : "unset logscale x"));
  if (axis.categorical) out.add(kj::str("set xrange [-0.5:", axis.ticks.size(), "-0.5]"));
  else out.add(kj::str("set autoscale x"));
  out.add(kj::str("plot ", kj::strArray(plots, ", \\\n  ")));
  return kj::str(kj::strArray(out, "\n"), "\n");
}

Axis axisOf(capnp::List<rpc::ExperimentReport::Variant>::Reader variants) {
  Axis axis;
  axis.xs = kj::heapArray<double>(variants.size());
  axis.series = kj::heapArray<size_t>(variants.size());
  auto valueOf = [](rpc::ExperimentReport::Variant::Reader v) {
    return v.getValue().size() ? v.getValue() : v.getLabel();
  };
  for (auto i : kj::indices(variants)) {
    auto v = variants[i];
    axis.categorical = axis.categorical || !parseNumber(valueOf(v), axis.xs[i]);
    kj::Maybe<size_t> s;
    for (auto k : kj::indices(axis.names)) if (axis.names[k] == v.getSeriesValue()) s = k;
    KJ_IF_MAYBE(k, s) {
      axis.series[i] = *k;
    } else {
      axis.series[i] = axis.names.size();
      axis.names.add(kj::heapString(v.getSeriesValue()));
    }
  }
  if (axis.categorical) {
    for (auto i : kj::indices(variants)) {
      kj::Maybe<size_t> t;
      for (auto k : kj::indices(axis.ticks)) if (axis.ticks[k] == valueOf(variants[i])) t = k;
      KJ_IF_MAYBE(k, t) {
        axis.xs[i] = *k;
      } else {
        axis.xs[i] = axis.ticks.size();
        axis.ticks.add(kj::heapString(valueOf(variants[i])));
      }
    }
  } else {
    double lo = INFINITY, hi = 0;
    bool positive = true;
    for (auto x : axis.xs) {
      positive = positive && x > 0;
      lo = kj::min(lo, x);
      hi = kj::max(hi, x);
    }
    axis.logX = positive && hi / lo >= 16;
  }
  return axis;
}

}  // namespace

kj::Array<kj::String> chosenFigures(rpc::ExperimentReport::Reader report, kj::ArrayPtr<const kj::String> figures) {
  kj::Vector<kj::String> chosen;
  if (figures.size() != 0) {
    auto consider = [&](capnp::List<Row>::Reader rows, bool step) {
      for (auto r : rows) {
        auto name = figureName(r, step);
        bool take = false;
        for (auto& f : figures) take = take || fnmatch(f.cStr(), name.cStr(), 0) == 0;
        if (take) chosen.add(kj::mv(name));
      }
    };
    consider(report.getSteps(), true);
    consider(report.getCounters(), false);
    return chosen.releaseAsArray();
  }

  // Default: where the time goes — the slowest top-level steps — and the counters that differ
  // between values; fewer of each when every figure is drawn once per series value.
  size_t series = axisOf(report.getVariants()).names.size();
  size_t limit = kj::max(DEFAULT_FIGURES / kj::max(series, size_t(1)), size_t(1));
  kj::Vector<kj::Tuple<double, size_t>> slowest;
  auto steps = report.getSteps();
  for (auto i : kj::indices(steps)) {
    if (steps[i].getDepth() != 0) continue;
    double top = 0;
    for (auto c : steps[i].getCells()) top = kj::max(top, c.getMedian());
    slowest.add(kj::tuple(top, i));
  }
  std::sort(slowest.begin(), slowest.end(), [](auto& a, auto& b) { return kj::get<0>(a) > kj::get<0>(b); });
  kj::Vector<size_t> picked;
  for (size_t k = 0; k < slowest.size() && k < limit; k++) picked.add(kj::get<1>(slowest[k]));
  std::sort(picked.begin(), picked.end());   // in scenario order
  for (auto i : picked) chosen.add(figureName(steps[i], true));
  // A counter whose value is the swept value itself (a capacity echoing the setting swept)
  // says nothing the axis does not: it is no result.
  auto echoes = [&](Row::Reader r) {
    auto variants = report.getVariants();
    auto cells = r.getCells();
    for (auto i : kj::indices(variants)) {
      double value;
      if (!parseNumber(variants[i].getValue(), value)) return false;
      if (i >= cells.size() || !cells[i].getPresent() || cells[i].getMedian() != value) return false;
    }
    return variants.size() > 0;
  };
  size_t taken = 0;
  for (auto r : report.getCounters()) {
    if (taken == limit) break;
    if (r.getDiffers() && !echoes(r)) {
      chosen.add(figureName(r, false));
      taken++;
    }
  }
  return chosen.releaseAsArray();
}

kj::String plotScript(rpc::ExperimentReport::Reader report, kj::StringPtr svgPath,
                      kj::ArrayPtr<const kj::String> figures) {
  if (report.getKind() == rpc::ExperimentReport::Kind::COMPARE) return compareScript(report, svgPath);

  auto chosen = chosenFigures(report, figures);
  auto isChosen = [&](kj::StringPtr name) {
    for (auto& c : chosen) if (c == name) return true;
    return false;
  };
  kj::Vector<Series> steps, counters;
  for (auto r : report.getSteps()) {
    auto name = figureName(r, true);
    if (isChosen(name)) steps.add(Series{kj::mv(name), r});
  }
  for (auto r : report.getCounters()) {
    auto name = figureName(r, false);
    if (isChosen(name)) counters.add(Series{kj::mv(name), r});
  }

  auto axis = axisOf(report.getVariants());

  size_t panels = (steps.empty() ? 0 : 1) + (counters.empty() ? 0 : 1);
  // Each panel: the plot, and below it the key, one line per figure and series value.
  size_t lines = axis.names.size();
  size_t stepsHeight = steps.empty() ? 0 : 280 + 17 * steps.size() * lines;
  size_t countersHeight = counters.empty() ? 0 : 280 + 17 * counters.size() * lines;
  size_t total = kj::max(stepsHeight + countersHeight, size_t(360));
  kj::Vector<kj::String> out;
  out.add(header(total));
  out.add(kj::str("set output ", quoted(svgPath)));
  auto runs = report.getRepeats();
  auto what = runs > 1 ? kj::str(": median and min-max over ", runs, " runs") : kj::str();
  out.add(kj::str("set multiplot"));
  out.add(caption(report));
  if (axis.categorical) {
    kj::Vector<kj::String> tics;
    for (auto i : kj::indices(axis.ticks)) tics.add(kj::str(quoted(axis.ticks[i]), " ", i));
    out.add(kj::str("set xtics (", kj::strArray(tics, ", "), ")"));
  } else if (axis.logX) {
    out.add(kj::str("set xtics 2"));   // one tick per power of two on a log-2 axis
  }
  if (!steps.empty()) {
    auto base = report.getTimeBase() == "wall" ? "wall" : "modeled";
    out.add(sweepPanel("s", kj::str(base, " step time per iteration (us)", what), steps, axis,
                       report.getParam(), double(countersHeight) / total,
                       double(stepsHeight) / total));
  }
  if (!counters.empty()) {
    out.add(sweepPanel("c", kj::str("counters", what), counters, axis, report.getParam(), 0,
                       double(countersHeight) / total));
  }
  if (panels == 0) {
    out.add(kj::str("set title 'nothing to plot: no figure matched'"));
    out.add(kj::str("unset border\nunset tics\nplot [0:1][0:1] NaN notitle"));
  }
  out.add(kj::str("unset multiplot"));
  return kj::str(kj::strArray(out, "\n"), "\n");
}

kj::Maybe<kj::String> findGnuplot() {
  const char* path = getenv("PATH");
  kj::StringPtr dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (size_t i = 0; i <= dirs.size(); i++) {
    if (i == dirs.size() || dirs[i] == ':') {
      if (i > start) {
        auto candidate = kj::str(dirs.slice(start, i), "/gnuplot");
        if (access(candidate.cStr(), X_OK) == 0) return kj::mv(candidate);
      }
      start = i + 1;
    }
  }
  return nullptr;
}

kj::Maybe<kj::String> runGnuplot(kj::StringPtr gnuplot, kj::StringPtr script) {
  // gnuplot reads the script from stdin; its complaints go to our stderr.
  FILE* p = popen(kj::str("'", gnuplot, "' -").cStr(), "w");
  if (p == nullptr) return kj::str("cannot start ", gnuplot, ": ", strerror(errno));
  fwrite(script.begin(), 1, script.size(), p);
  int status = pclose(p);
  if (status == -1) return kj::str("gnuplot: ", strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return kj::str("gnuplot failed (", WIFEXITED(status) ? kj::str("exit status ", WEXITSTATUS(status))
                                                         : kj::str("wait status ", status), ")");
  }
  return nullptr;
}

}  // namespace nb::experiment
