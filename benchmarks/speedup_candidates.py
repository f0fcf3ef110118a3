#!/usr/bin/env python
"""Measure candidate speed-ups of ``medai segment`` without editing medai: each is a monkeypatch in the child.

Usage::

    .venv/bin/python benchmarks/speedup_candidates.py [--rounds 6] [--quiet-wait 20] VARIANT [VARIANT ...]

A VARIANT is ``deepbet`` (always run, as the reference), ``medai`` (unchanged) or ``medai+FLAG+FLAG...``.
All variants run in rotation, one fresh process each, round after round; the table shows each variant's
wall time and its ratio to the deepbet run of the same round, plus Dice against deepbet and the reference.

Flags (what each emulates; every one leaves the masks bit-identical on Colin27):

=============  ============================================================================================
gc             ``gc.disable()`` at the start of ``medai.cli.main.main``: torch's import creates ~190k
               objects and the cyclic GC keeps re-traversing them (~0.25 s in a run).
freeze_end     ``gc.freeze()`` when ``main`` is done, so the collections Python runs at exit skip them.
gcload         with ``gc``: ``gc.enable(); gc.freeze()`` right after the networks are loaded (safe for
               long batches: later collections see only new objects).
osexit         flush stdout/stderr and ``os._exit(code)`` after ``main`` (skips interpreter teardown);
               always done when ``medai.cli.main.entry`` exists, since the console script does it.
nommap         glibc ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 1 GiB)`` before torch is
               imported: freed activations stay mapped and are reused instead of being page-faulted anew.
nofreeze       ``torch.jit.freeze`` skipped (to measure what freezing buys).
fast_bbox      bounding boxes from per-axis ``any`` projections instead of ``np.argwhere`` (postprocess
               ``_bounding_box`` and the segment extent in ``write_seg_nrrd``).
inplace_norm   ``normalize`` (quantile-zscore) with in-place ops after the first one.
fg_only        ``localise_crop_segment`` resizes back only the foreground channel (threshold cards).
novalidate     no JSON-schema validation of cards (so ``jsonschema`` is not imported).
nan_skip       ``np.nan_to_num`` skipped when every voxel is finite.
=============  ============================================================================================

The patches reach into medai's internals as of the commit named in the results; a renamed function makes
the child fail loudly rather than measure nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_brain_extraction as bench  # noqa: E402

FLAGS = ("gc", "freeze_end", "gcload", "osexit", "nommap", "nofreeze", "fast_bbox", "inplace_norm", "fg_only",
         "novalidate", "nan_skip")


# ---------------------------------------------------------------------------------------------------------
# The child: apply the variant's patches, run the tool, exit.
# ---------------------------------------------------------------------------------------------------------

def child(variant: str, input_path: str, output_path: str) -> None:
    flags = set(variant.split("+"))
    if "nommap" in flags:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap'ed chunks
        libc.mallopt(-1, 2 ** 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed memory in the heap

    if "deepbet" in flags:
        from deepbet import run_bet

        run_bet([input_path], mask_paths=[output_path], no_gpu=True)
        sys.exit(0)

    import gc

    import numpy as np

    import medai.cli.main as cli_main

    if "gc" in flags:
        gc.disable()
    _patch_medai(flags, np)
    code = cli_main.main(["segment", input_path, "-o", output_path, "--device", "cpu", "--progress", "none",
                          "--overwrite"])
    if "freeze_end" in flags:
        gc.freeze()
    if "osexit" in flags or hasattr(cli_main, "entry"):
        # medai.cli.main.entry (the console script since a74da5f) ends the process this way
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _patch_medai(flags: set[str], np) -> None:
    import gc

    import medai.pipeline.segment as pseg

    if flags & {"nofreeze", "inplace_norm", "fg_only", "gcload"}:
        original_load = pseg.Segmenter.load

        def load(self):
            first = self._networks is None
            if first:
                import torch

                _patch_torch_side(flags, np, torch)
            networks = original_load(self)
            if first and "gcload" in flags:
                gc.enable()
                gc.freeze()
            return networks

        pseg.Segmenter.load = load

    if "fast_bbox" in flags:
        import medai.io.seg_nrrd as seg_nrrd
        import medai.pipeline.postprocess as post

        def extent(mask):
            lo, hi = [], []
            for axis in range(mask.ndim):
                idx = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
                lo.append(int(idx[0]))
                hi.append(int(idx[-1]))
            return lo, hi

        def bounding_box(mask):
            lo, hi = extent(mask)
            return tuple(slice(max(a - 1, 0), min(b + 2, n)) for a, b, n in zip(lo, hi, mask.shape))

        post._bounding_box = bounding_box

        class _Numpy:  # numpy for seg_nrrd, whose argwhere is used only for the min and max
            def __getattr__(self, name):
                return getattr(np, name)

            @staticmethod
            def argwhere(mask):
                mask = np.asarray(mask)
                if not mask.any():
                    return np.empty((0, mask.ndim), dtype=np.intp)
                return np.array(extent(mask))

        seg_nrrd.np = _Numpy()

    if "nan_skip" in flags:
        class _NumpyFinite:
            def __getattr__(self, name):
                return getattr(np, name)

            @staticmethod
            def nan_to_num(x, *args, **kwargs):
                return x if np.isfinite(x).all() else np.nan_to_num(x, *args, **kwargs)

        pseg.np = _NumpyFinite()

    if "novalidate" in flags:
        import medai.models.card as card

        class _Validator:
            def __init__(self, schema):
                pass

            def iter_errors(self, data):
                return iter(())

        card.jsonschema = type("jsonschema", (), {"Draft202012Validator": _Validator})
        sys.modules.setdefault("jsonschema", card.jsonschema)  # card_from_dict imports it by name


def _patch_torch_side(flags: set[str], np, torch) -> None:
    import medai.pipeline.inference as inf

    if "nofreeze" in flags:
        torch.jit.freeze = lambda module, *args, **kwargs: module
    if "inplace_norm" in flags:
        original = inf.normalize

        def normalize(x, spec, bounds=None):
            if spec.get("type") != "quantile-zscore":
                return original(x, spec, bounds)
            if bounds is None:
                bounds = inf.quantile_bounds(x.cpu().numpy(), spec["lower"], spec["upper"])
            low, high = bounds
            x = x.sub(low).div_(max(high - low, 1e-12)).clamp_(0, 1)
            mean, std = x.mean(), x.std().clamp_min(1e-12)
            return x.sub_(mean).div_(std).mul_(spec.get("scale", 1.0)).add_(spec.get("shift", 0.0))

        inf.normalize = normalize
    if "fg_only" in flags:
        def localise_crop_segment(image, networks, spec, intensity, on_stage=None):
            from medai.pipeline.postprocess import largest_component

            note = on_stage or (lambda stage, f: None)
            x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
            mode = spec.get("resize_mode", "nearest-exact")
            small = inf.resize_tensor(x, spec["localiser_size"], mode)
            bounds = None
            if intensity.get("type") == "quantile-zscore":
                bounds = inf.quantile_bounds(small.numpy(), intensity["lower"], intensity["upper"])
            note("localise", 0.0)
            located = inf._scores(networks["localiser"](inf.normalize(small, intensity, bounds)[None])[0], spec)
            channel = spec.get("foreground_channel", 1)
            found = largest_component((located[channel] > 0.5).cpu().numpy())
            box = inf._bbox_with_margin(found, image.shape, spec.get("crop_margin", 0.1))
            note("segment", 0.0)
            crop = inf.resize_tensor(x[(slice(None),) + box], spec["input_size"], mode)
            scores_crop = inf._scores(networks["segmenter"](inf.normalize(crop, intensity, bounds)[None])[0], spec)
            crop_shape = tuple(s.stop - s.start for s in box)
            foreground = inf.resize_tensor(scores_crop[channel:channel + 1], crop_shape, mode).cpu().numpy()
            # only the foreground channel is filled: valid for cards that threshold it (not for argmax)
            scores = np.zeros((scores_crop.shape[0],) + tuple(image.shape), dtype=np.float32)
            scores[(slice(channel, channel + 1),) + box] = foreground
            return scores

        inf.MODES["localise-crop-segment"] = localise_crop_segment


# ---------------------------------------------------------------------------------------------------------
# The parent: rounds of all variants, then a table.
# ---------------------------------------------------------------------------------------------------------

def summarise(runs: dict[str, list[dict]], variants: list[str], agreement: dict[str, str]) -> dict:
    """Print and return each variant's wall time and its ratios to the same round's deepbet run.

    The "quiet" ratio uses only the rounds in which no run saw other processes use bench.QUIET CPUs or more.
    """
    rounds = len(runs["deepbet"])
    quiet = [i for i in range(rounds)
             if all((runs[v][i].get("foreign_cpu_per_s") or 0.0) < bench.QUIET for v in variants)]
    print(f"\n{len(quiet)} of {rounds} rounds were quiet (other processes < {bench.QUIET} CPU in every run)")
    print(f"{'variant':72s} {'wall median [min-max]':>22s} {'/deepbet pairwise [min-max]':>28s} "
          f"{'quiet rounds':>12s} {'cpu/deepbet':>11s} {'RSS MiB':>8s}  Dice vs deepbet, vs reference")
    table = {}
    for variant in variants:
        walls = [r["wall_s"] for r in runs[variant]]
        pairs = [w / r["wall_s"] for w, r in zip(walls, runs["deepbet"])]
        quiet_pairs = [pairs[i] for i in quiet]
        cpu_pairs = [r["cpu_s"] / d["cpu_s"] for r, d in zip(runs[variant], runs["deepbet"])]
        rss = statistics.median([r["max_rss_mib"] for r in runs[variant]])
        table[variant] = {"wall": bench.summary(walls), "pairwise": bench.summary(pairs),
                          "pairwise_quiet_rounds": bench.summary(quiet_pairs), "cpu_pairwise": bench.summary(cpu_pairs),
                          "max_rss_mib_median": rss, "agreement": agreement.get(variant, "")}
        q = f"{statistics.median(quiet_pairs):12.3f}" if quiet_pairs else f"{'-':>12s}"
        print(f"{variant:72s} {statistics.median(walls):6.3f} [{min(walls):.3f}-{max(walls):.3f}] "
              f"{statistics.median(pairs):13.3f} [{min(pairs):.3f}-{max(pairs):.3f}] {q} "
              f"{statistics.median(cpu_pairs):11.3f} {rss:8.0f}  {agreement.get(variant, '')}")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="medai, medai+FLAG+... (deepbet is always included)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quiet-wait", type=float, default=20.0, metavar="SECONDS")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for every child")
    parser.add_argument("--input", default=bench.DEFAULT_INPUT)
    parser.add_argument("--reference", default=bench.DEFAULT_REFERENCE)
    parser.add_argument("--work-dir", default="/tmp/medai-speedup-candidates")
    parser.add_argument("--json", default=None, help="also write the raw runs here")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    for variant in args.variants:
        unknown = set(variant.split("+")[1:]) - set(FLAGS)
        if not variant.startswith("medai") or unknown:
            parser.error(f"bad variant {variant!r} (flags: {', '.join(FLAGS)})")
    variants = ["deepbet"] + [v for v in args.variants if v != "deepbet"] or ["deepbet", "medai"]
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    outputs = {v: work / (v.replace("+", "_") + (".nii.gz" if v == "deepbet" else ".seg.nrrd")) for v in variants}

    def run(variant: str, tag: str, quiet: float) -> dict:
        r = bench.run_child([sys.executable, str(Path(__file__).resolve()), "--child", variant,
                             str(Path(args.input).resolve()), str(outputs[variant])], env, work, tag, quiet)
        bench._check(r, variant)
        return {k: v for k, v in r.items() if k not in ("stdout", "stderr")}

    for variant in variants:  # warm-up
        run(variant, "warmup", 0.0)
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for i in range(args.rounds):
        for variant in variants[i % len(variants):] + variants[:i % len(variants)]:
            runs[variant].append(run(variant, f"r{i}", args.quiet_wait))
        print(f"round {i + 1}/{args.rounds} done", flush=True)

    reference = Path(args.reference) if args.reference else None
    agreement = {}
    for variant in variants[1:]:
        d = bench.compare_masks(outputs[variant], outputs["deepbet"], reference)
        agreement[variant] = f"{d['dice_medai_deepbet']:.6f}, {d.get('dice_medai_reference', float('nan')):.5f}"
    table = summarise(runs, variants, agreement)
    if args.json:
        Path(args.json).write_text(json.dumps({"variants": variants, "summary": table, "runs": runs,
                                               "agreement": agreement, "input": args.input,
                                               "git": bench._git_state()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
