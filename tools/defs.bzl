"""The one facade every nestbed BUILD file loads its macros from.

Copts live here and nowhere else (NB_DEFAULT_COPTS for project code, NB_TEST_COPTS for tests).
"""

load(
    "//tools:study.bzl",
    _nestbed_generate = "nestbed_generate",
    _nestbed_study = "nestbed_study",
)

# A compare or sweep as one Bazel action per run and a merge; a generated system of realistic
# size (tools/study.bzl).
nestbed_study = _nestbed_study
nestbed_generate = _nestbed_generate

# Optimisation follows the compilation mode: -O2 for `-c opt` (benchmarks), -O1 otherwise
# (tests run against a reasonably fast build without -O2's compile time).
_NB_OPT = select({
    "//tools:opt": ["-O2"],
    "//conditions:default": ["-O1"],
})

NB_DEFAULT_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    # KJ's headers use these freely; they are not bugs in our code.
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    # GCC 12 reports false positives inside kj::Maybe/kj::Own at -O1 and above.
    "-Wno-maybe-uninitialized",
]

NB_TEST_COPTS = NB_DEFAULT_COPTS + [
    "-Wno-unused-variable",
    "-Wno-sign-compare",
]

# Who may depend on a component's or hardware model's code: the system that registers it and
# tests. Everything else reaches it through its //interfaces schema, over RPC (ARCHITECTURE.md:
# components never include or link each other's code).
NB_COMPONENT_VISIBILITY = [
    "//system:__subpackages__",
    "//tests:__subpackages__",
]

# Generated capnp code is third-party code: compile it without -Werror.
_NB_CAPNP_COPTS = ["-std=c++20", "-w", "-O1"]

def nb_cc_library(name, srcs = [], hdrs = [], deps = [], copts = [], **kwargs):
    """A project C++ library.

    Args:
      name: target name.
      srcs: .c++ sources.
      hdrs: public headers.
      deps: dependencies.
      copts: extra copts appended to NB_DEFAULT_COPTS.
      **kwargs: passed to cc_library (visibility, testonly, ...).
    """
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps,
        copts = NB_DEFAULT_COPTS + copts + _NB_OPT,
        **kwargs
    )

def nb_cc_binary(name, srcs = [], deps = [], copts = [], **kwargs):
    """A project C++ binary.

    Args:
      name: target name.
      srcs: sources.
      deps: dependencies.
      copts: extra copts appended to NB_DEFAULT_COPTS.
      **kwargs: passed to cc_binary.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        copts = NB_DEFAULT_COPTS + copts + _NB_OPT,
        **kwargs
    )

def nb_capnp_library(src, deps = [], **kwargs):
    """Compiles one Cap'n Proto schema into a cc_library named after it.

    `interfaces/foo-bar.capnp` becomes `:foo-bar_capnp` with header `foo-bar.capnp.h`.
    Schemas import each other by absolute path from the workspace root
    (`import "/interfaces/common.capnp"`).

    Args:
      src: the .capnp file in this package.
      deps: other nb_capnp_library targets this schema imports.
      **kwargs: passed to the cc_library (visibility, testonly, ...).
    """
    base = src[:-len(".capnp")]
    name = base + "_capnp"
    native.genrule(
        name = name + "_gen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = [src + ".h", src + ".c++"],
        cmd = ("capnp compile -I/usr/include -I. --no-standard-import " +
               "-oc++:$(GENDIR) $(location %s)") % src,
        message = "capnp " + src,
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = [src] + [d + "_srcs" for d in deps],
        visibility = kwargs.get("visibility", None),
    )
    native.cc_library(
        name = name,
        srcs = [src + ".c++"],
        hdrs = [src + ".h"],
        deps = deps + ["@capnp"],
        copts = _NB_CAPNP_COPTS,
        # Generated code includes imported schemas as <interfaces/foo.capnp.h>: expose the
        # headers under their workspace-relative path.
        strip_include_prefix = "/",
        **kwargs
    )

def nb_test(src, deps = [], copts = [], size = "small", **kwargs):
    """A Catch2 test named after its source (`foo-test.c++` -> `:foo-test`).

    Args:
      src: the test source.
      deps: dependencies; Catch2's main is added.
      copts: extra copts appended to NB_TEST_COPTS.
      size: Bazel test size.
      **kwargs: passed to cc_test (data, args, tags, ...).
    """
    name = src.rsplit(".", 1)[0]
    native.cc_test(
        name = name,
        srcs = [src],
        deps = deps + ["//tests:catch_main"],
        copts = NB_TEST_COPTS + copts + _NB_OPT,
        size = size,
        **kwargs
    )

def nestbed_scenario_test(name, manifest, scenarios, sets = {}, defines = {}, size = "small", **kwargs):
    """Scenarios as Bazel tests: one test per scenario, `nestbed run MANIFEST SCENARIO`.

    Each test passes when every expectation of its scenario holds; its steps are the test
    cases of Bazel's JUnit XML (bazel-testlogs/.../test.xml). With several scenarios, `name`
    is a test_suite of `<name>_<scenario file's stem>`.

    Args:
      name: the test (one scenario) or test_suite (several).
      manifest: the manifest's label, e.g. "//system/manifests:default.toml".
      scenarios: scenario labels, e.g. ["//system/scenarios:default.capnp"] or ["mine.capnp"].
      sets: manifest overrides, {"components.page_table.placement": "process"} (--set).
      defines: scenario parameters, {"batch": "64"} (--define).
      size: Bazel test size.
      **kwargs: passed to each sh_test (tags, timeout, ...).
    """
    options = []
    for key, value in sorted(sets.items()):
        options += ["--set", "%s=%s" % (key, value)]
    for key, value in sorted(defines.items()):
        options += ["--define", "%s=%s" % (key, value)]
    tests = []
    for scenario in scenarios:
        stem = scenario.split(":")[-1].split("/")[-1]
        if stem.endswith(".capnp"):
            stem = stem[:-len(".capnp")]
        test = name if len(scenarios) == 1 else "%s_%s" % (name, stem.replace("-", "_"))
        native.sh_test(
            name = test,
            srcs = ["//tools:scenario-test.sh"],
            args = ["$(rootpath //system:nestbed)"] + options + [
                "$(rootpath %s)" % manifest,
                "$(rootpath %s)" % scenario,
            ],
            data = [
                "//interfaces:schemas",
                "//system:nestbed",
                "//system:nestbed-host",
                manifest,
                scenario,
            ],
            size = size,
            **kwargs
        )
        tests.append(":" + test)
    if len(scenarios) > 1:
        native.test_suite(name = name, tests = tests)

def nb_fuzz_target(name, src, corpus, deps = [], data = [], copts = [], size = "small"):
    """A fuzz target (`LLVMFuzzerTestOneInput`) and the test that replays its seed corpus.

    `name` is a cc_binary: under --config=fuzz a libFuzzer binary (tools/fuzz.sh runs it), in
    every other build a replayer that runs the input files it is given once each. `name_corpus`
    is an sh_test running `name` over every file of `corpus`, so the corpus (and every crash
    found and fixed, kept there) is a regression test of the normal suite.

    Args:
      name: the target, e.g. "manifest_fuzz".
      src: its source.
      corpus: the seed corpus files (a glob of tests/fuzz/corpus/<name>/*).
      deps: dependencies.
      data: runtime files (schemas, manifests).
      copts: extra copts appended to NB_TEST_COPTS.
      size: Bazel size of the corpus test.
    """
    native.cc_binary(
        name = name,
        srcs = [src],
        deps = deps + select({
            "//tools:fuzz": [],
            "//conditions:default": ["//tests/fuzz:replay_main"],
        }),
        copts = NB_TEST_COPTS + copts + _NB_OPT,
        linkopts = select({
            "//tools:fuzz": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = data,
        testonly = True,
    )
    native.filegroup(
        name = name + "_seeds",
        srcs = corpus,
        testonly = True,
    )
    native.sh_test(
        name = name + "_corpus",
        srcs = ["//tools:fuzz-replay.sh"],
        args = ["$(rootpath :%s)" % name, "$(rootpaths :%s_seeds)" % name],
        data = [":" + name, ":" + name + "_seeds"] + data,
        size = size,
    )
