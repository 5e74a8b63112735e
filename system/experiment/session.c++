// One run. See session.h.

#include "system/experiment/session.h"

#include "system/experiment/trace.h"

#include "system/version.h"

#include <kj/debug.h>

namespace nb::experiment {

kj::Array<kj::StringPtr> RunResult::failedScenarios() const {
  kj::Vector<kj::StringPtr> failed;
  if (outcome == Outcome::RAN) {
    for (auto s : report.asReader().getScenarios()) {
      if (!s.getOk()) failed.add(s.getFile());
    }
  }
  return failed.releaseAsArray();
}

void fillStats(rpc::RunReport::Builder report, kj::ArrayPtr<const InstanceStats> stats) {
  auto components = report.initComponents(stats.size());
  for (auto i : kj::indices(stats)) {
    components[i].setName(stats[i].name);
    components[i].setImpl(stats[i].impl);
    auto counters = components[i].initCounters(stats[i].counters.size());
    for (auto j : kj::indices(stats[i].counters)) {
      counters[j].setName(stats[i].counters[j].name);
      counters[j].setValue(stats[i].counters[j].value);
    }
  }
}

void fillProvenance(rpc::Provenance::Builder out, const Plan& plan, kj::StringPtr label,
                    kj::ArrayPtr<const Override> overrides, kj::ArrayPtr<const ScenarioParam> params) {
  out.setVersion(nestbedVersion());
  out.setCommit(nestbedCommit());
  out.setBuildMode(buildMode());
  auto m = out.initManifests(1)[0];
  m.setLabel(label);
  m.setFile(plan.file);
  auto o = m.initOverrides(overrides.size());
  for (auto i : kj::indices(overrides)) o.set(i, kj::str(overrides[i].key, "=", overrides[i].value));
  m.setEffective(plan.effective);
  out.setTiming(kj::str(plan.timing.profile.name, " (", plan.timing.origin, ")"));
  auto p = out.initParams(params.size());
  for (auto i : kj::indices(params)) p.set(i, kj::str(params[i].name, "=", params[i].value));
}

RunResult runOnce(kj::AsyncIoContext& io, Plan plan, kj::ArrayPtr<const LoadedScenario> scenarios,
                  RunOptions& options) {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto report = message->initRoot<rpc::RunReport>();
  RunResult result{RunResult::Outcome::RAN, kj::mv(message), report, nullptr, nullptr};
  report.setManifest(plan.file);
  fillProvenance(report.initProvenance(), plan, "", options.overrides, options.params);

  kj::Vector<kj::String> events;
  ComposerOptions composerOptions{kj::heapString(options.hostBinary), [&](kj::StringPtr e) {
                                    options.onEvent(e);
                                    events.add(kj::heapString(e));
                                  }};
  Tracer* tracer = nullptr;
  KJ_IF_MAYBE(t, options.tracer) { tracer = t; }
  if (tracer != nullptr) {
    tracer->beginRun(options.traceLabel, plan);
    composerOptions.interpose = tracer->interposer();
  }
  Composer composer(io, options.registry, kj::mv(plan), kj::mv(composerOptions));
  if (tracer != nullptr) tracer->useClock(composer.clock());
  auto finish = [&]() {
    composer.shutdown().wait(io.waitScope);
    auto ev = report.initEvents(events.size());
    for (auto i : kj::indices(events)) ev.set(i, events[i]);
    // A component that died unasked fails the run, whatever the scenarios said, also when it
    // died during shutdown.
    kj::Vector<kj::StringPtr> deaths;
    for (auto& l : composer.losses()) {
      if (!l.expected) deaths.add(l.what);
    }
    auto d = report.initDeaths(deaths.size());
    for (auto i : kj::indices(deaths)) d.set(i, deaths[i]);
    if (!deaths.empty()) report.setOk(false);
  };
  struct Supervisor final : public ScenarioRunner::Supervisor {
    Composer& composer;
    explicit Supervisor(Composer& c) : composer(c) {}
    kj::Promise<void> kill(kj::StringPtr instance, int signal) override {
      return composer.kill(instance, signal);
    }
    size_t lossCount() override { return composer.losses().size(); }
    kj::Maybe<kj::String> losses() override { return composer.describeLosses(); }
    bool exitPending() override { return composer.exitPending(); }
  } supervisor(composer);

  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { composer.start().wait(io.waitScope); })) {
    finish();
    result.outcome = RunResult::Outcome::START_FAILED;
    result.error = kj::heapString(e->getDescription());
    if (tracer != nullptr) tracer->endRun();
    return result;
  }

  rpc::Root::Client root = composer.root();
  if (tracer != nullptr) root = tracer->scenarioRoot(kj::mv(root));
  bool ok = true;
  {
    // Each step's counter changes are read through the composer's own root: not the traced
    // one, whose crossings are recorded (and charged).
    ScenarioRunner runner(io.waitScope, kj::mv(root), options.registry, composer.memory(),
                          composer.root());
    runner.setClock(composer.clock(), composer.plan().timing.profile.name,
                    io.provider->getTimer());
    runner.setSupervisor(supervisor);
    runner.setStepCounters(options.stepCounters);
    kj::Vector<ScenarioError> checkErrors;
    for (auto& s : scenarios) {
      for (auto& e : runner.check(s)) checkErrors.add(kj::mv(e));
    }
    if (!checkErrors.empty()) {
      finish();
      result.outcome = RunResult::Outcome::CHECK_FAILED;
      result.checkErrors = checkErrors.releaseAsArray();
      if (tracer != nullptr) tracer->endRun();
      return result;
    }
    KJ_IF_MAYBE(t, options.tracer) {
      // Counter changes are attributed to the step that made them: the stats before the first
      // step, then after every step that is not a repeat (a repeat's children were the steps).
      t->counters(composer.stats().wait(io.waitScope), std::chrono::steady_clock::now());
      runner.observeSteps([&composer, &io, tracer = t](const ScenarioRunner::StepSpan& span) {
        tracer->step(span);
        if (!span.isRepeat) tracer->counters(composer.stats().wait(io.waitScope), span.end);
      });
    }
    auto reports = report.initScenarios(scenarios.size());
    for (auto i : kj::indices(scenarios)) {
      runner.run(scenarios[i], reports[i]);
      ok = ok && reports[i].getOk();
    }
    // Counters while the runner still holds what the scenarios saved (see runner.h).
    fillStats(report, composer.stats().wait(io.waitScope));
    // So is the memory dump: the tables a scenario created (createTable) are still alive.
    KJ_IF_MAYBE(f, options.beforeShutdown) { (*f)(composer, io.waitScope); }
  }
  report.setOk(ok);
  finish();
  if (tracer != nullptr) tracer->endRun();
  return result;
}

}  // namespace nb::experiment
