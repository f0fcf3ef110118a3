#!/usr/bin/env python
"""Brain extraction: ``medai segment`` against deepbet's own ``run_bet``, whole process and per stage.

Usage::

    .venv/bin/python benchmarks/bench_brain_extraction.py [--runs 5] [--input PATH] [--reference MASK]

Each measurement is a fresh child process (interpreter start, imports, model load, inference, writing the
result), so both tools pay the same fixed costs. The two tools alternate (medai, deepbet, medai, deepbet, ...)
so that load from other processes on the machine hits both alike; ratios of same-run pairs are the numbers
to quote, absolute seconds only describe this machine at this moment. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = "/usr/share/mricron/templates/ch2.nii.gz"
DEFAULT_REFERENCE = "/usr/share/mricron/templates/ch2bet.nii.gz"
RESULT_MARK = "BENCH_RESULT "
#: A run is "quiet" when other processes used less than this many CPUs on average while it ran.
QUIET = 0.1

# --------------------------------------------------------------------------------------------------------
# Child programs. Timed children run the tools exactly as a user would; stage children run the same work
# with timers wrapped around the tools' own functions (nothing else is changed).
# --------------------------------------------------------------------------------------------------------

DEEPBET_TIMED = """\
from deepbet import run_bet
run_bet([{input!r}], mask_paths=[{output!r}], no_gpu=True)
"""

# Shared timer helpers, pasted at the top of both stage children.
_TIMER_HELPERS = r"""
import json, os, sys, time
_T0 = float(os.environ["BENCH_T0"])
START = {"interpreter_start": time.time() - _T0}
_P0 = time.perf_counter()
SPANS = []          # (name, start, end) in seconds since _P0
SUMS = {}           # name -> [seconds, calls]
MISSING = []

def now():
    return time.perf_counter() - _P0

def add(name, seconds):
    entry = SUMS.setdefault(name, [0.0, 0])
    entry[0] += seconds
    entry[1] += 1

def timed(name, fn, span=False):
    def wrapper(*args, **kwargs):
        t = now()
        try:
            return fn(*args, **kwargs)
        finally:
            e = now()
            add(name, e - t)
            if span:
                SPANS.append((name, t, e))
    wrapper.__wrapped__ = fn
    return wrapper

def patch(owner, attr, name, span=False):
    import inspect
    try:
        wrapped = timed(name, getattr(owner, attr), span)
        if isinstance(inspect.getattr_static(owner, attr), staticmethod):
            wrapped = staticmethod(wrapped)
        setattr(owner, attr, wrapped)
    except (AttributeError, TypeError):
        MISSING.append(name)

def first(name):
    return next((s for s in SPANS if s[0] == name), None)

def report(extra):
    out = {"start": START, "sums": {k: {"seconds": v[0], "calls": v[1]} for k, v in SUMS.items()},
           "spans": SPANS, "missing_instruments": MISSING, "in_script_seconds": now()}
    out.update(extra)
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()
""".replace("RESULT_MARK", repr(RESULT_MARK))

MEDAI_STAGES = _TIMER_HELPERS + r"""
t = now()
import medai.cli.main as cli_main
import medai.cli.segment as cli_segment
import medai.io
import medai.pipeline.segment as pseg
import medai.runtime.torchscript as rts
SPANS.append(("import_medai_cli", t, now()))

patch(medai.io, "read_volume", "read", span=True)
patch(cli_segment, "write_result", "write", span=True)
ROLES = {}

def _instrument_after_torch():
    import torch
    import torch.nn.functional as F
    import medai.models.weights as weights
    import medai.pipeline.inference as inference
    import medai.pipeline.postprocess as post
    patch(weights, "sha256_of", "sha256")
    patch(torch.jit, "load", "jit_load")
    patch(torch.jit, "freeze", "jit_freeze")
    patch(F, "interpolate", "interpolate")
    patch(inference, "quantile_bounds", "quantile")
    patch(inference, "normalize", "normalize")
    patch(post, "largest_component", "connected_components")
    patch(post, "fill_holes", "fill_holes")

try:
    _orig_load = pseg.Segmenter.load
    def _load(self):
        first_time = self._networks is None
        if first_time:
            t = now()
            import torch
            SPANS.append(("import_torch", t, now()))
            t = now()
            _instrument_after_torch()
            SPANS.append(("instrumentation", t, now()))
            t = now()
        nets = _orig_load(self)
        if first_time:
            SPANS.append(("load_networks", t, now()))
            for role, net in nets.items():
                ROLES[id(net)] = role
        return nets
    pseg.Segmenter.load = _load
except AttributeError:
    MISSING.append("load_networks")

try:
    _orig_call = rts.TorchScriptNetwork.__call__
    def _call(self, batch):
        t = now()
        try:
            return _orig_call(self, batch)
        finally:
            e = now()
            role = ROLES.get(id(self), "network")
            add("forward_" + role, e - t)
            SPANS.append(("forward_" + role, t, e))
    rts.TorchScriptNetwork.__call__ = _call
except AttributeError:
    MISSING.append("forward")

t = now()
code = cli_main.main(["segment", INPUT, "-o", OUTPUT, "--device", "cpu", "--progress", "json", "--overwrite"])
SPANS.append(("cli_main", t, now()))
report({"exit_code": code})
if hasattr(cli_main, "entry"):
    # exit the way the console script does (medai.cli.main.entry: no interpreter teardown)
    import logging
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
"""

DEEPBET_STAGES = _TIMER_HELPERS + r"""
t = now()
import torch
SPANS.append(("import_torch", t, now()))
t = now()
import fill_voids
import deepbet.bet as bet
import deepbet.utils as utils
from deepbet import run_bet
SPANS.append(("import_deepbet", t, now()))

class _Timed:
    # A model stand-in that times its calls and passes everything else through.
    def __init__(self, module, name):
        self._module, self._name = module, name
    def __call__(self, *args, **kwargs):
        t = now()
        try:
            return self._module(*args, **kwargs)
        finally:
            e = now()
            add(self._name, e - t)
            SPANS.append((self._name, t, e))
    def __getattr__(self, attr):
        return getattr(self._module, attr)

_load_count = [0]
_orig_load_model = bet.load_model
def _load_model(path, no_gpu=False):
    t = now()
    model = _orig_load_model(path, no_gpu)
    add("load_model", now() - t)
    name = "forward_localiser" if "bbox" in os.path.basename(str(path)) else "forward_segmenter"
    return _Timed(model, name)
bet.load_model = _load_model

import torch.nn.functional as F
patch(torch.jit, "load", "jit_load")
patch(F, "interpolate", "interpolate")
patch(torch.Tensor, "quantile", "quantile")
patch(bet, "normalize", "normalize")
patch(bet, "keep_largest_connected_component", "connected_components")
patch(fill_voids, "fill", "fill_holes")
patch(bet.BrainExtraction, "__init__", "load_networks", span=True)
patch(bet.BrainExtraction, "run", "case", span=True)
patch(bet.BrainExtraction, "run_model", "run_model", span=True)
patch(bet.BrainExtraction, "postprocess", "postprocess_call", span=True)
patch(bet.BrainExtraction, "save", "write", span=True)

t = now()
run_bet([INPUT], mask_paths=[OUTPUT], no_gpu=True)
SPANS.append(("run_bet", t, now()))
report({"exit_code": 0})
"""


def _child_source(template: str, input_path: str, output_path: str) -> str:
    return f"INPUT = {input_path!r}\nOUTPUT = {output_path!r}\n" + template


# --------------------------------------------------------------------------------------------------------
# Running children: wall clock, CPU time and peak RSS of exactly that process (os.wait4).
# --------------------------------------------------------------------------------------------------------

def _busy_cpu_seconds() -> Optional[float]:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait: float, threshold: float = 0.2, window: float = 0.5) -> tuple[float, Optional[float]]:
    """Wait (at most ``max_wait`` s) until other processes use less than ``threshold`` CPUs; returns (waited, load)."""
    start = time.perf_counter()
    load = None
    while time.perf_counter() - start < max_wait:
        b0 = _busy_cpu_seconds()
        time.sleep(window)
        b1 = _busy_cpu_seconds()
        if b0 is None or b1 is None:
            return 0.0, None
        load = (b1 - b0) / window
        if load < threshold:
            break
    return time.perf_counter() - start, load


def run_child(argv: list[str], env: dict[str, str], workdir: Path, tag: str, quiet_wait: float = 0.0) -> dict[str, Any]:
    """Run ``argv`` to completion; returns wall/user/sys seconds, max RSS (MiB), exit code, stdout, stderr."""
    out_path, err_path = workdir / f"{tag}.stdout", workdir / f"{tag}.stderr"
    waited, load_at_start = wait_for_quiet(quiet_wait) if quiet_wait > 0 else (0.0, None)
    env = dict(env, BENCH_T0=repr(time.time()))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    busy0 = _busy_cpu_seconds()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=str(workdir))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    busy1 = _busy_cpu_seconds()
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is already reaped
    cpu = usage.ru_utime + usage.ru_stime
    result = {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": cpu,
        # Linux reports ru_maxrss in KiB, macOS in bytes.
        "max_rss_mib": usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024),
        "exit_code": proc.returncode,
        "loadavg_1min_before": load_before,
        "quiet_wait_s": waited,
        "other_cpu_at_start": load_at_start,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }
    if busy0 is not None and busy1 is not None:
        # CPU seconds other processes used while this child ran (ours excluded), per second of wall time.
        result["foreign_cpu_per_s"] = max(0.0, (busy1 - busy0) - cpu) / wall
    return result


def _check(result: dict[str, Any], what: str) -> None:
    if result["exit_code"] != 0:
        sys.stderr.write(result["stdout"][-3000:] + result["stderr"][-3000:])
        raise SystemExit(f"bench: {what} failed with exit code {result['exit_code']}")


def _parse_stage_output(stdout: str) -> dict[str, Any]:
    payload, case_done = None, None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            payload = json.loads(line[len(RESULT_MARK):])
        elif line.startswith("{") and '"case_done"' in line:
            case_done = json.loads(line)
    if payload is None:
        raise SystemExit("bench: a stage child printed no result line")
    payload["case_done"] = case_done
    return payload


# --------------------------------------------------------------------------------------------------------
# Turning stage-child reports into comparable numbers.
# --------------------------------------------------------------------------------------------------------

#: Fine-grained components, the same names for both tools (seconds; summed over calls).
COMPONENTS = ("interpreter_start", "import_torch", "import_other", "sha256", "jit_load", "jit_freeze", "read",
              "quantile", "interpolate", "normalize", "forward_localiser", "forward_segmenter",
              "connected_components", "fill_holes", "write")


def _span(payload: dict[str, Any], name: str) -> Optional[tuple[float, float]]:
    for entry in payload["spans"]:
        if entry[0] == name:
            return entry[1], entry[2]
    return None


def _dur(payload: dict[str, Any], name: str) -> float:
    s = _span(payload, name)
    return s[1] - s[0] if s else float("nan")


def _sum(payload: dict[str, Any], name: str) -> float:
    entry = payload["sums"].get(name)
    return entry["seconds"] if entry else 0.0


def medai_breakdown(payload: dict[str, Any], wall: float) -> dict[str, Any]:
    """medai's own stage timings (from ``case_done``) plus the fine components."""
    stages = dict((payload.get("case_done") or {}).get("timings") or {})
    case_seconds = (payload.get("case_done") or {}).get("seconds", float("nan"))
    comp = {name: _sum(payload, name) for name in COMPONENTS}
    comp["interpreter_start"] = payload["start"]["interpreter_start"]
    comp["import_torch"] = _dur(payload, "import_torch")
    comp["import_other"] = _dur(payload, "import_medai_cli")
    comp["read"] = _dur(payload, "read")
    comp["write"] = _dur(payload, "write")
    stages["read"] = comp["read"]
    stages["write"] = comp["write"]
    # medai's "checks" stage includes loading the networks (torch import, SHA256, TorchScript load + freeze).
    stages["load_networks"] = _dur(payload, "load_networks") + comp["import_torch"]
    stages["checks_without_load"] = (stages.get("checks", float("nan")) - stages["load_networks"]
                                     - _dur(payload, "instrumentation"))
    _finish_stages(stages, wall)
    comp["other"] = wall - sum(v for v in comp.values() if v == v)
    return {"stages": stages, "components": comp, "case_seconds": case_seconds}


def _finish_stages(stages: dict[str, float], wall: float) -> None:
    """Add 'pipeline' (preprocess to postprocess) and 'startup_and_exit' (wall minus every stage)."""
    stages["pipeline"] = sum(stages.get(k, float("nan")) for k in ("preprocess", "localise", "segment", "postprocess"))
    counted = ("load_networks", "read", "checks_without_load", "pipeline", "write")
    stages["startup_and_exit"] = wall - sum(v for k in counted if (v := stages.get(k, float("nan"))) == v)


def deepbet_breakdown(payload: dict[str, Any], wall: float) -> dict[str, Any]:
    """deepbet's run split at the same boundaries as medai's stages (see README)."""
    comp = {name: _sum(payload, name) for name in COMPONENTS}
    comp["interpreter_start"] = payload["start"]["interpreter_start"]
    comp["import_torch"] = _dur(payload, "import_torch")
    comp["import_other"] = _dur(payload, "import_deepbet")
    comp["jit_load"] = _sum(payload, "jit_load")
    comp["read"] = _span(payload, "run_model")[0] - _span(payload, "case")[0]
    comp["write"] = _dur(payload, "write")
    case = _span(payload, "case")
    run_model = _span(payload, "run_model")
    loc = _span(payload, "forward_localiser")
    seg = _span(payload, "forward_segmenter")
    post = _span(payload, "postprocess_call")
    stages = {
        "load_networks": _dur(payload, "load_networks") + comp["import_torch"],
        "read": comp["read"],
        "preprocess": loc[0] - run_model[0],
        "localise": seg[0] - loc[0],
        "segment": run_model[1] - seg[0],
        "postprocess": post[1] - run_model[1],
        "write": case[1] - post[1],
    }
    _finish_stages(stages, wall)
    comp["other"] = wall - sum(v for v in comp.values() if v == v)
    return {"stages": stages, "components": comp, "case_seconds": case[1] - case[0]}


# --------------------------------------------------------------------------------------------------------
# Dice
# --------------------------------------------------------------------------------------------------------

def _load_mask(path: Path):
    """(K, J, I) boolean array and (spacing, origin, direction) of a mask file (label > 0)."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    if path.name.lower().endswith(".seg.nrrd"):
        from medai.io.seg_nrrd import read_seg_nrrd

        volume, _ = read_seg_nrrd(path)
    else:
        from medai.io import read_volume

        volume = read_volume(path)
    geometry = (np.asarray(volume.spacing, float), np.asarray(volume.origin, float),
                np.asarray(volume.direction, float))
    return np.asarray(volume.array) > 0, geometry


def _same_grid(a, b) -> bool:
    import numpy as np

    return all(np.allclose(x, y, atol=1e-4) for x, y in zip(a, b))


def dice(a, b) -> float:
    import numpy as np

    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def compare_masks(medai_out: Path, deepbet_out: Path, reference: Optional[Path]) -> dict[str, Any]:
    import numpy as np

    m, gm = _load_mask(medai_out)
    d, gd = _load_mask(deepbet_out)
    out: dict[str, Any] = {"voxels_medai": int(m.sum()), "voxels_deepbet": int(d.sum())}
    if m.shape != d.shape or not _same_grid(gm, gd):
        raise SystemExit("bench: medai's and deepbet's masks are not on the same voxel grid")
    out["dice_medai_deepbet"] = dice(m, d)
    out["voxels_differing"] = int(np.logical_xor(m, d).sum())
    if reference is not None:
        r, gr = _load_mask(reference)
        if r.shape != m.shape or not _same_grid(gr, gm):
            raise SystemExit("bench: the reference mask is not on the input's voxel grid")
        out["voxels_reference"] = int(r.sum())
        out["dice_medai_reference"] = dice(m, r)
        out["dice_deepbet_reference"] = dice(d, r)
    return out


# --------------------------------------------------------------------------------------------------------
# Statistics and printing
# --------------------------------------------------------------------------------------------------------

def summary(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v == v]
    if not values:
        return {}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio_summary(a: list[float], b: list[float]) -> dict[str, float]:
    """medai/deepbet: ratio of medians, ratio of minima, and the median of same-pair ratios."""
    pairs = [x / y for x, y in zip(a, b) if y and x == x and y == y]
    sa, sb = summary(a), summary(b)
    if not sa or not sb or not sb["median"]:
        return {}
    out = {"of_medians": sa["median"] / sb["median"], "of_minima": sa["min"] / sb["min"] if sb["min"] else float("nan")}
    if pairs:
        out.update({"pairwise_median": statistics.median(pairs), "pairwise_min": min(pairs), "pairwise_max": max(pairs)})
    return out


def _fmt(s: dict[str, float], unit: str = "s") -> str:
    if not s:
        return "-"
    if unit == "MiB":
        return f"{s['median']:7.0f} [{s['min']:.0f}-{s['max']:.0f}]"
    return f"{s['median']:7.3f} [{s['min']:.3f}-{s['max']:.3f}]"


def print_table(title: str, rows: list[tuple[str, dict, dict, dict]], unit: str = "s") -> None:
    print(f"\n{title}")
    print(f"  {'':24s} {'medai median [min-max]':>28s} {'deepbet median [min-max]':>28s} {'ratio':>7s} {'pairwise':>9s}")
    for name, a, b, r in rows:
        ratio = f"{r['of_medians']:7.2f}" if r.get("of_medians") == r.get("of_medians") and r else "      -"
        pair = f"{r['pairwise_median']:9.2f}" if r and "pairwise_median" in r else "        -"
        print(f"  {name:24s} {_fmt(a, unit):>28s} {_fmt(b, unit):>28s} {ratio} {pair}")


# --------------------------------------------------------------------------------------------------------

def _medai_command(python: str) -> list[str]:
    script = Path(python).with_name("medai")
    return [str(script)] if script.is_file() and os.access(script, os.X_OK) else [python, "-m", "medai.cli.main"]


def _versions(python: str) -> dict[str, str]:
    code = ("import json, platform, torch, numpy\nfrom importlib import metadata as m\n"
            "v = {'python': platform.python_version(), 'torch': torch.__version__, 'numpy': numpy.__version__,"
            " 'torch_threads': torch.get_num_threads()}\n"
            "for d in ('deepbet', 'medai', 'SimpleITK', 'nibabel', 'connected-components-3d', 'fill_voids'):\n"
            "    try: v[d] = m.version(d)\n    except m.PackageNotFoundError: v[d] = None\n"
            "print(json.dumps(v))")
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    except (subprocess.CalledProcessError, json.JSONDecodeError) as error:
        return {"error": str(error)}


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "medai_dirty": bool(git("status", "--porcelain", "--", "medai"))}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool (default: %(default)s)")
    parser.add_argument("--stage-runs", type=int, default=None,
                        help="instrumented per-stage runs per tool (default: same as --runs; 0 to skip)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs per tool first, to warm the file cache (default: %(default)s)")
    parser.add_argument("--input", default=DEFAULT_INPUT, help="T1-weighted head image (default: Colin27 ch2)")
    parser.add_argument("--reference", default=None,
                        help=f"reference brain mask (> 0 is brain); default {DEFAULT_REFERENCE} when --input is "
                             "the default, else none")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS/MKL_NUM_THREADS for both tools (default: unset, each uses every core)")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for other processes to go idle (default: off)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children (default: this one)")
    parser.add_argument("--work-dir", default=None, help="folder for outputs and logs (default: a temporary one)")
    parser.add_argument("--json", default=None,
                        help="where to write results (default: benchmarks/results/brain_extraction-<date>.json)")
    parser.add_argument("--no-json", action="store_true", help="print only; write no results file")
    args = parser.parse_args(argv)
    stage_runs = args.runs if args.stage_runs is None else args.stage_runs
    input_path = str(Path(args.input).resolve())
    reference = args.reference or (DEFAULT_REFERENCE if args.input == DEFAULT_INPUT else None)
    reference_path = Path(reference).resolve() if reference else None
    if not Path(input_path).is_file():
        raise SystemExit(f"bench: no such input file: {input_path}")

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="bench-brain-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    medai_cmd = _medai_command(args.python)
    medai_out, deepbet_out = work / "medai.seg.nrrd", work / "deepbet_mask.nii.gz"

    def medai_timed(tag: str) -> dict[str, Any]:
        return run_child(medai_cmd + ["segment", input_path, "-o", str(medai_out), "--device", "cpu",
                                      "--progress", "none", "--overwrite"], env, work, tag, args.quiet_wait)

    def deepbet_timed(tag: str) -> dict[str, Any]:
        if deepbet_out.exists():
            deepbet_out.unlink()
        code = DEEPBET_TIMED.format(input=input_path, output=str(deepbet_out))
        return run_child([args.python, "-c", code], env, work, tag, args.quiet_wait)

    print(f"bench: input {input_path}; reference {reference_path}; {args.runs} timed + {stage_runs} stage runs "
          f"per tool; work dir {work}", flush=True)
    for i in range(args.warmup):
        _check(medai_timed(f"warmup{i}_medai"), "medai (warm-up)")
        _check(deepbet_timed(f"warmup{i}_deepbet"), "deepbet (warm-up)")

    timed: dict[str, list[dict[str, Any]]] = {"medai": [], "deepbet": []}
    dices = []
    for i in range(args.runs):
        for tool, fn in (("medai", medai_timed), ("deepbet", deepbet_timed)):
            r = fn(f"run{i}_{tool}")
            _check(r, tool)
            timed[tool].append(r)
            print(f"  run {i + 1}/{args.runs} {tool:7s} {r['wall_s']:6.2f} s wall  {r['cpu_s']:6.2f} s cpu  "
                  f"{r['max_rss_mib']:6.0f} MiB  other load {r.get('foreign_cpu_per_s', float('nan')):.2f} cpu/s",
                  flush=True)
        dices.append(compare_masks(medai_out, deepbet_out, reference_path))

    stages: dict[str, list[dict[str, Any]]] = {"medai": [], "deepbet": []}
    for i in range(stage_runs):
        for tool, template, out in (("medai", MEDAI_STAGES, medai_out), ("deepbet", DEEPBET_STAGES, deepbet_out)):
            r = run_child([args.python, "-c", _child_source(template, input_path, str(out))], env, work,
                          f"stages{i}_{tool}", args.quiet_wait)
            _check(r, f"{tool} (stage run)")
            payload = _parse_stage_output(r["stdout"])
            breakdown = (medai_breakdown if tool == "medai" else deepbet_breakdown)(payload, r["wall_s"])
            breakdown.update(wall_s=r["wall_s"], missing_instruments=payload["missing_instruments"],
                             foreign_cpu_per_s=r.get("foreign_cpu_per_s"))
            stages[tool].append(breakdown)
            print(f"  stage run {i + 1}/{stage_runs} {tool:7s} {r['wall_s']:6.2f} s wall", flush=True)

    # ---- summaries -----------------------------------------------------------------------------------
    whole = {}
    for key in ("wall_s", "cpu_s", "max_rss_mib"):
        a = [r[key] for r in timed["medai"]]
        b = [r[key] for r in timed["deepbet"]]
        whole[key] = {"medai": summary(a), "deepbet": summary(b), "ratio": ratio_summary(a, b)}
    foreign = [r.get("foreign_cpu_per_s") for t in timed.values() for r in t if r.get("foreign_cpu_per_s") is not None]
    # Pairs during which other processes stayed (nearly) idle: the cleanest comparison there is.
    quiet = [i for i, (a, b) in enumerate(zip(timed["medai"], timed["deepbet"]))
             if (a.get("foreign_cpu_per_s") or 0.0) < QUIET and (b.get("foreign_cpu_per_s") or 0.0) < QUIET]
    for key in ("wall_s", "cpu_s"):
        whole[key]["ratio_quiet_pairs"] = ratio_summary([timed["medai"][i][key] for i in quiet],
                                                        [timed["deepbet"][i][key] for i in quiet])
        whole[key]["quiet_pairs"] = len(quiet)

    stage_names = ("load_networks", "read", "checks_without_load", "preprocess", "localise", "segment",
                   "postprocess", "pipeline", "write", "startup_and_exit")
    per_stage, per_component = {}, {}
    if stage_runs:
        for name in stage_names:
            a = [s["stages"].get(name, float("nan")) for s in stages["medai"]]
            b = [s["stages"].get(name, float("nan")) for s in stages["deepbet"]]
            per_stage[name] = {"medai": summary(a), "deepbet": summary(b), "ratio": ratio_summary(a, b)}
        for name in COMPONENTS + ("other",):
            a = [s["components"].get(name, float("nan")) for s in stages["medai"]]
            b = [s["components"].get(name, float("nan")) for s in stages["deepbet"]]
            per_component[name] = {"medai": summary(a), "deepbet": summary(b), "ratio": ratio_summary(a, b)}

    print_table("Whole process (timed runs, alternating)", [
        ("wall clock", whole["wall_s"]["medai"], whole["wall_s"]["deepbet"], whole["wall_s"]["ratio"]),
        ("CPU time (user+sys)", whole["cpu_s"]["medai"], whole["cpu_s"]["deepbet"], whole["cpu_s"]["ratio"])])
    if quiet:
        r = whole["wall_s"]["ratio_quiet_pairs"]
        print(f"  wall clock ratio over the {len(quiet)} quiet pairs (other processes < {QUIET} CPU): "
              f"pairwise median {r['pairwise_median']:.3f} [{r['pairwise_min']:.3f}-{r['pairwise_max']:.3f}]")
    print_table("Peak memory (max RSS of the process)", [
        ("max RSS", whole["max_rss_mib"]["medai"], whole["max_rss_mib"]["deepbet"], whole["max_rss_mib"]["ratio"])],
        unit="MiB")
    if stage_runs:
        print_table("Per stage (instrumented runs; medai's stage names, deepbet split at the same points)",
                    [(n, v["medai"], v["deepbet"], v["ratio"]) for n, v in per_stage.items()])
        print_table("Components (summed over calls; 'other' = wall minus the listed components)",
                    [(n, v["medai"], v["deepbet"], v["ratio"]) for n, v in per_component.items()])
        missing = sorted({m for t in stages.values() for s in t for m in s["missing_instruments"]})
        if missing:
            print(f"  (not instrumented, the code they wrap has changed: {', '.join(missing)})")
    last = dices[-1]
    print("\nAgreement (last timed run's outputs)")
    if "dice_medai_reference" in last:
        print(f"  Dice medai   vs reference: {last['dice_medai_reference']:.5f}")
        print(f"  Dice deepbet vs reference: {last['dice_deepbet_reference']:.5f}")
    print(f"  Dice medai vs deepbet:     {last['dice_medai_deepbet']:.6f} ({last['voxels_differing']} voxels differ)")
    if any(d != dices[0] for d in dices):
        print("  note: outputs differed between runs")
    if foreign:
        noisy_runs = sum(f >= QUIET for f in foreign)
        print(f"\nOther processes' CPU use during the timed runs: median {statistics.median(foreign):.2f}, "
              f"max {max(foreign):.2f} CPU-seconds per second ({os.cpu_count()} CPUs); {noisy_runs} of "
              f"{len(foreign)} runs above {QUIET}, where absolute numbers are noisy and ratios less so.")

    results = {
        "benchmark": "brain_extraction",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
        "versions": _versions(args.python),
        "git": _git_state(),
        "config": {"input": input_path, "reference": str(reference_path) if reference_path else None,
                   "runs": args.runs, "stage_runs": stage_runs, "warmup": args.warmup,
                   "medai_command": medai_cmd, "deepbet_call": "run_bet([INPUT], mask_paths=[OUT], no_gpu=True)",
                   "threads": args.threads, "quiet_wait": args.quiet_wait,
                   "env": {k: env.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                          "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}},
        "whole_process": whole,
        "per_stage": per_stage,
        "components": per_component,
        "agreement": {"last": last, "all_runs_identical": all(d == dices[0] for d in dices)},
        "foreign_cpu_per_s": summary(foreign),
        # Other processes used more than QUIET CPUs during over a fifth of the timed runs: absolute times are noisy.
        "noisy": bool(foreign) and sum(f >= QUIET for f in foreign) > 0.2 * len(foreign),
        "raw": {"timed": {t: [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in rs]
                          for t, rs in timed.items()},
                "stages": stages, "agreement": dices},
    }
    if not args.no_json:
        if args.json:
            target = Path(args.json)
        else:
            stamp = _dt.date.today().isoformat()
            target = REPO / "benchmarks" / "results" / f"brain_extraction-{stamp}.json"
            if target.exists():
                target = target.with_name(f"brain_extraction-{stamp}-{_dt.datetime.now():%H%M%S}.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nbench: results written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
