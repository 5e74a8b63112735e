"""nestbed_study: a compare or sweep as Bazel actions, one per run, and a merge.

Loaded through //tools:defs.bzl. Each run of the experiment (a "point": one variant, one round)
is one action, `nestbed compare|sweep ... --point K --out K.json`, whose inputs are declared —
the nestbed binary and its runfiles (schemas, nestbed-host), the manifests, the scenarios and
`data` (cost profiles or other files a manifest names) — so points run in parallel up to
--jobs, under --spawn_strategy=sandboxed, from a disk or remote cache, or on a remote executor.
One more action, `nestbed merge`, turns the points into what the command prints: the table
(NAME.txt), NAME.json (ExperimentReport), NAME.csv, and the plot (NAME.svg, drawn by gnuplot
from NAME.gp).

Steps are in modeled time by default (the modeled machine's time from the cost profile: the
same on every run, on every machine), so a point's step table and counters are deterministic.
`wall = True` measures this machine instead: such figures differ between runs and executors,
and a cached point keeps the time of the run that filled the cache. The records always carry
the other time base too (wall time beside modeled), so their bytes differ between runs; the
table (NAME.txt) in modeled time does not.
"""

def _values_text(key, values):
    return "%s=%s" % (key, ",".join(values))

def _nestbed_study_impl(ctx):
    manifests = ctx.files.manifests
    scenarios = ctx.files.scenarios
    if len(manifests) == 2:
        if ctx.attr.param:
            fail("a compare (two manifests) takes no param: sweep one manifest instead")
        command = ["compare", manifests[0].path, manifests[1].path]
        variants = 2
    elif len(manifests) == 1:
        if not ctx.attr.param or not ctx.attr.values:
            fail("a sweep (one manifest) needs param and values")
        command = ["sweep", manifests[0].path]
        variants = len(ctx.attr.values)
        if ctx.attr.series:
            if not ctx.attr.series_values:
                fail("series needs series_values")
            variants *= len(ctx.attr.series_values)
    else:
        fail("manifests: two (compare) or one (sweep), not %d" % len(manifests))
    command += [s.path for s in scenarios]
    if ctx.attr.param:
        command += ["--param", _values_text(ctx.attr.param, ctx.attr.values)]
    if ctx.attr.series:
        command += ["--series", _values_text(ctx.attr.series, ctx.attr.series_values)]
    for key, value in sorted(ctx.attr.sets.items()):
        command += ["--set", "%s=%s" % (key, value)]
    for key, value in sorted(ctx.attr.defines.items()):
        command += ["--define", "%s=%s" % (key, value)]
    repeats = ctx.attr.repeats
    command += ["--repeat", str(repeats)]
    if ctx.attr.wall:
        command += ["--wall"]

    nestbed = ctx.attr._nestbed[DefaultInfo].files_to_run
    host = ctx.executable._host
    inputs = manifests + scenarios + ctx.files.data + [host]

    # The process-placed instances' nestbed-host, by the path the action sees: nestbed looks
    # beside its resolved self otherwise, which a remote executor's input root need not have.
    env = {"NESTBED_HOST": host.path}
    points = []
    total = variants * repeats
    for k in range(total):
        out = ctx.actions.declare_file("%s.points/%d.json" % (ctx.label.name, k))
        ctx.actions.run(
            executable = nestbed,
            tools = [ctx.attr._host[DefaultInfo].files_to_run],
            arguments = command + ["--point", str(k), "--out", out.path],
            inputs = inputs,
            outputs = [out],
            env = env,
            mnemonic = "NestbedPoint",
            progress_message = "nestbed study %s: point %d of %d" % (ctx.label, k + 1, total),
        )
        points.append(out)

    txt = ctx.actions.declare_file(ctx.label.name + ".txt")
    csv = ctx.actions.declare_file(ctx.label.name + ".csv")
    json = ctx.actions.declare_file(ctx.label.name + ".json")
    svg = ctx.actions.declare_file(ctx.label.name + ".svg")
    gp = ctx.actions.declare_file(ctx.label.name + ".gp")
    figures = []
    for f in ctx.attr.figures:
        figures += ["--figure", f]
    args = ctx.actions.args()
    args.add(nestbed.executable.path)
    args.add_all([txt, json, csv, svg, gp])
    args.add_all(figures)
    args.add("--")
    args.add_all(points)
    ctx.actions.run_shell(
        tools = [nestbed],
        inputs = points,
        outputs = [txt, csv, json, svg, gp],
        arguments = [args],
        # $1 nestbed, $2..$6 the outputs, then --figure options up to "--", then the points.
        command = """
set -e
nestbed=$1 txt=$2 json=$3 csv=$4 svg=$5 gp=$6
shift 6
figures=()
while [ "$1" != "--" ]; do figures+=("$1"); shift; done
shift
"$nestbed" merge "$@" --csv "$csv" --plot "$svg" --plot-script "$gp" "${figures[@]}" > "$txt"
"$nestbed" merge "$@" --json > "$json"
""",
        mnemonic = "NestbedMerge",
        progress_message = "nestbed study %s: merging %d points" % (ctx.label, total),
    )
    outputs = [txt, csv, json, svg, gp]
    return [
        DefaultInfo(files = depset(outputs), runfiles = ctx.runfiles(files = outputs)),
        OutputGroupInfo(points = depset(points)),
    ]

nestbed_study_rule = rule(
    implementation = _nestbed_study_impl,
    attrs = {
        "manifests": attr.label_list(allow_files = [".toml"], mandatory = True),
        "scenarios": attr.label_list(allow_files = [".capnp"], mandatory = True),
        "param": attr.string(),
        "values": attr.string_list(),
        "series": attr.string(),
        "series_values": attr.string_list(),
        "sets": attr.string_dict(),
        "defines": attr.string_dict(),
        "figures": attr.string_list(),
        "repeats": attr.int(default = 1),
        "wall": attr.bool(default = False),
        "data": attr.label_list(allow_files = True),
        # The target configuration's nestbed (the one `bazel build //system:nestbed` builds):
        # running it as a tool would build every component a second time for the exec
        # configuration. Remote executors must therefore run the target platform (README).
        "_nestbed": attr.label(
            default = "//system:nestbed",
            executable = True,
            cfg = "target",
        ),
        "_host": attr.label(
            default = "//system:nestbed-host",
            executable = True,
            cfg = "target",
        ),
    },
)

def nestbed_study(
        name,
        manifests,
        scenarios,
        param = None,
        values = [],
        series = None,
        series_values = [],
        sets = {},
        defines = {},
        figures = [],
        repeats = None,
        wall = False,
        data = [],
        **kwargs):
    """A study: `nestbed compare` (two manifests) or `nestbed sweep` (one) as Bazel actions.

    `bazel build :NAME` writes NAME.txt (the table the command prints), NAME.json
    (ExperimentReport), NAME.csv, NAME.svg and NAME.gp (the plot and its gnuplot script) in
    bazel-bin; the points' records are the output group `points`. One action per run, cached.

    Args:
      name: the target.
      manifests: [A, B] for a compare, [M] for a sweep (labels of .toml files).
      scenarios: scenario labels, run in order in every run.
      param: sweep: the key swept (any --set key, or "scenario.<name>" for a parameter).
      values: sweep: its values, as text.
      series: sweep: a second key, one plotted line per value.
      series_values: its values.
      sets: manifest overrides for every run, {"key": "value"} (--set).
      defines: scenario parameters for every run, {"name": "value"} (--define).
      figures: sweep: the rows to plot (--figure patterns).
      repeats: runs of each variant (--repeat); default 1 (modeled time needs one), 3 with wall.
      wall: steps in this machine's wall time instead of modeled time (not deterministic).
      data: further files the manifests read (a cost profile given by path).
      **kwargs: tags, visibility, ...
    """
    nestbed_study_rule(
        name = name,
        manifests = manifests,
        scenarios = scenarios,
        param = param,
        values = values,
        series = series,
        series_values = series_values,
        sets = sets,
        defines = defines,
        figures = figures,
        repeats = repeats if repeats else (3 if wall else 1),
        wall = wall,
        data = data,
        **kwargs
    )

def _nestbed_generate_impl(ctx):
    manifest = ctx.actions.declare_file(ctx.label.name + ".toml")
    scenario = ctx.actions.declare_file(ctx.label.name + ".capnp")
    ctx.actions.run(
        executable = ctx.attr._nestbed[DefaultInfo].files_to_run,
        arguments = [
            "generate",
            "--vms",
            str(ctx.attr.vms),
            "--devices",
            str(ctx.attr.devices),
            "--smmus",
            str(ctx.attr.smmus),
            "--placement",
            ctx.attr.placement,
            "--guest-path",
            ctx.attr.guest_path,
            "--manifest",
            manifest.path,
            "--scenario",
            scenario.path,
        ],
        outputs = [manifest, scenario],
        mnemonic = "NestbedGenerate",
        progress_message = "nestbed generate %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([manifest, scenario])),
        OutputGroupInfo(manifest = depset([manifest]), scenario = depset([scenario])),
    ]

_nestbed_generate_rule = rule(
    implementation = _nestbed_generate_impl,
    attrs = {
        "vms": attr.int(default = 4),
        "devices": attr.int(default = 2),
        "smmus": attr.int(default = 2),
        "placement": attr.string(default = "inline"),
        "guest_path": attr.string(default = "native"),
        "_nestbed": attr.label(
            default = "//system:nestbed",
            executable = True,
            cfg = "target",
        ),
    },
)

def nestbed_generate(
        name,
        vms = 4,
        devices = 2,
        smmus = 2,
        placement = "inline",
        guest_path = "native",
        **kwargs):
    """`nestbed generate` as a build step: a system of realistic size for studies.

    NAME.toml and NAME.capnp (the manifest and its scenario, system/generate/scale.h); the
    targets `NAME_manifest` and `NAME_scenario` name each, for nestbed_study's attributes.

    Args:
      name: the target.
      vms: VMs.
      devices: passed-through devices per VM.
      smmus: SMMUs the VMs are spread over.
      placement: the OS-side components' placement, "inline" or "process".
      guest_path: the vIOMMUs' guest path, "native" or "generic".
      **kwargs: tags, visibility, ...
    """
    _nestbed_generate_rule(
        name = name,
        vms = vms,
        devices = devices,
        smmus = smmus,
        placement = placement,
        guest_path = guest_path,
        **kwargs
    )
    for part in ["manifest", "scenario"]:
        native.filegroup(
            name = "%s_%s" % (name, part),
            srcs = [":" + name],
            output_group = part,
            **kwargs
        )
