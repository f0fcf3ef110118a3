"""Sliding-window inference time of a MONAI SegResNet under every engine, in one process, with voxel agreement.

    nice -n 5 .venv/bin/python benchmarks/bench_engines.py [--runs 3] [--warmup 1] [--train-steps 30] [--json PATH]

Volume: pyradiomics' lung1 chest CT (HU), resampled to 1.5 mm isotropic with medai.resample and centre-cropped or
padded (with -1024 HU) to 192 x 192 x 128 voxels, an abdominal-CT-sized grid. Network: MONAI SegResNet
(init_filters 16, 1 input channel, 14 output classes), trained for ``--train-steps`` steps (fixed seed) on 64^3
patches of the same CT to tell 14 HU bands apart, so its logits have the structure of a trained network (argmax
agreement of a random network says little: its classes are near ties everywhere). Inference: medai's own
sliding-window mode (MONAI sliding_window_inference, roi 96^3, overlap 0.25, gaussian blending, sw_batch_size 1)
on a model card with runtime ``pytorch-state-dict``; every engine is loaded through
``medai.runtime.engines.load_network``, exactly as ``medai segment`` does.

Configurations: torch float32 (eager), torch bfloat16 autocast, ONNX Runtime float32, OpenVINO float32, OpenVINO
reduced precision (the CPU's default inference precision), and ``auto``. Runs alternate between configurations
(round robin) so a change in machine load hits all of them alike; the median of ``--runs`` timed runs is reported,
after ``--warmup`` untimed ones. ``load_s`` (not in the median) is loading plus one window: it includes the ONNX
export on the first ONNX engine and OpenVINO's compilation for the window shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LUNG1 = ROOT / ".data" / "pyradiomics" / "lung1_image.nrrd"
SHAPE_XYZ = (192, 192, 128)
CLASSES = 14
NETWORK = {"name": "SegResNet", "args": {"spatial_dims": 3, "init_filters": 16, "in_channels": 1,
                                         "out_channels": CLASSES}}
INTENSITY = {"type": "range", "a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1}
INFERENCE = {"mode": "sliding-window", "roi_size": [96, 96, 96], "overlap": 0.25, "output": "logits"}
#: (name, engine, precision)
CONFIGS = (("torch_fp32", "torch", "fp32"), ("torch_bf16_autocast", "torch", "reduced"),
           ("onnx_fp32", "onnx", "fp32"), ("openvino_fp32", "openvino", "fp32"),
           ("openvino_reduced", "openvino", "reduced"), ("auto", "auto", "fp32"))


def ct_volume() -> np.ndarray:
    """lung1 at 1.5 mm, centre-cropped/padded to SHAPE_XYZ, as a canonical (X, Y, Z) float32 array in HU."""
    from medai.io import read_volume
    from medai.resample import grid_like, resample_to_grid

    volume = read_volume(LUNG1)
    iso = resample_to_grid(volume, grid_like(volume, spacing=[1.5, 1.5, 1.5]), "linear", default=-1024.0)
    image = iso.array.transpose(2, 1, 0).astype(np.float32)
    out = np.full(SHAPE_XYZ, -1024.0, np.float32)
    src, dst = [], []
    for have, want in zip(image.shape, SHAPE_XYZ):
        start_src, start_dst = max(0, (have - want) // 2), max(0, (want - have) // 2)
        size = min(have, want)
        src.append(slice(start_src, start_src + size))
        dst.append(slice(start_dst, start_dst + size))
    out[tuple(dst)] = image[tuple(src)]
    return out


def hu_bands(image: np.ndarray) -> np.ndarray:
    """14 classes: HU bands from air to bone."""
    return np.digitize(image, np.linspace(-900, 1100, CLASSES - 1)).astype(np.int64)


def train(image: np.ndarray, steps: int, folder: Path) -> Path:
    """SegResNet trained ``steps`` steps (seed 0) on 64^3 patches of ``image``; returns its state dict file."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import SegResNet

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared machine, one training thread is far quicker than two that compete
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    network = SegResNet(**NETWORK["args"])
    optimiser = torch.optim.Adam(network.parameters(), 2e-3)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    x = np.clip((image + 1000) / 2000, 0, 1)
    target = hu_bands(image)
    for step in range(steps):
        i, j, k = (rng.integers(0, s - 64 + 1) for s in image.shape)
        patch = (slice(i, i + 64), slice(j, j + 64), slice(k, k + 64))
        value = loss(network(torch.from_numpy(x[patch][None, None])), torch.from_numpy(target[patch][None, None]))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        print(f"  train step {step + 1}/{steps}: loss {float(value):.3f}", file=sys.stderr, flush=True)
    torch.set_num_threads(threads)
    path = folder / "segresnet.pt"
    torch.save(network.state_dict(), path)
    return path


def make_card(weights: Path):
    from medai.models.card import card_from_dict
    from medai.models.weights import sha256_of

    return card_from_dict({
        "schema_version": 1, "id": "bench-segresnet", "name": "SegResNet benchmark", "version": "1",
        "task": "segmentation", "input": {"modality": "CT", "dimensions": 3},
        "labels": [{"value": v, "name": f"band {v}", "color": "#808080"} for v in range(1, CLASSES)],
        "runtime": "pytorch-state-dict", "network": NETWORK,
        "weights": {"segmenter": {"path": weights.name, "sha256": sha256_of(weights)}},
        "preprocessing": {"intensity": INTENSITY}, "inference": INFERENCE,
        "license": "MIT", "source": "benchmarks/bench_engines.py"}, folder=weights.parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="untimed runs per configuration first (each network already ran one window at load)")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--json", type=Path, help="result file (default benchmarks/results/engines_<date>.json)")
    parser.add_argument("--skip", nargs="*", default=[], choices=[c[0] for c in CONFIGS[1:]],
                        help="configurations to leave out (torch_fp32 is the reference and always runs)")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if c[0] not in args.skip]

    import torch

    from medai.pipeline.inference import sliding_window
    from medai.runtime.engines import load_network, resolve_engine
    from medai.runtime.openvino_runtime import reduced_precision_type

    work = Path(tempfile.mkdtemp(prefix="medai-bench-engines-"))
    os.environ["MEDAI_HOME"] = str(work / "home")  # a fresh export cache: load_s includes the ONNX export
    load_before = os.getloadavg()
    image = ct_volume()
    print(f"volume {image.shape} (1.5 mm), training SegResNet for {args.train_steps} steps", file=sys.stderr)
    t0 = time.perf_counter()
    card = make_card(train(image, args.train_steps, work))
    train_s = time.perf_counter() - t0

    networks, load_s = {}, {}
    for name, engine, precision in configs:
        t0 = time.perf_counter()
        networks[name] = load_network(card, "segmenter", engine, "cpu", precision)
        networks[name](torch.zeros((1, 1, *INFERENCE["roi_size"])))  # compiles OpenVINO for the window shape
        load_s[name] = time.perf_counter() - t0
    run = lambda name: sliding_window(image, {"segmenter": networks[name]}, INFERENCE, INTENSITY)  # noqa: E731

    outputs, seconds = {}, {name: [] for name, _, _ in configs}
    for round_ in range(args.warmup + args.runs):
        for name, _, _ in configs:
            t0 = time.perf_counter()
            outputs[name] = run(name)
            elapsed = time.perf_counter() - t0
            if round_ >= args.warmup:
                seconds[name].append(elapsed)
            print(f"  round {round_ + 1} {name}: {elapsed:.2f} s", file=sys.stderr, flush=True)

    reference = outputs["torch_fp32"]
    ref_labels = reference.argmax(0)
    base = statistics.median(seconds["torch_fp32"])
    results = {}
    for name, engine, precision in configs:
        median = statistics.median(seconds[name])
        results[name] = {
            "engine": engine if engine != "auto" else f"auto -> {resolve_engine('auto', 'cpu')}",
            "precision": precision, "median_s": round(median, 3), "runs_s": [round(s, 3) for s in seconds[name]],
            "speedup_vs_torch_fp32": round(base / median, 2), "load_s": round(load_s[name], 2),
            "label_agreement_vs_torch_fp32": float(np.mean(outputs[name].argmax(0) == ref_labels)),
            "max_abs_logit_diff_vs_torch_fp32": float(np.abs(outputs[name] - reference).max()),
        }
    report = {
        "benchmark": "bench_engines", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "volume": {"source": "pyradiomics lung1 CT", "spacing_mm": 1.5, "shape_xyz": list(SHAPE_XYZ)},
        "network": NETWORK, "train_steps": args.train_steps, "train_s": round(train_s, 1),
        "labels_vs_hu_bands_torch_fp32": float(np.mean(ref_labels == hu_bands(image))),
        "inference": INFERENCE, "runs": args.runs, "warmup": args.warmup,
        "machine": {"cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                    "platform": platform.platform(), "processor": platform.processor(),
                    "openvino_reduced_precision_type": reduced_precision_type(),
                    "loadavg_before": [round(v, 2) for v in load_before],
                    "loadavg_after": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"torch": torch.__version__, **{m: __import__(m).__version__ for m in ("monai", "onnxruntime")},
                     "openvino": sys.modules["openvino"].__version__},
        "results": results,
    }
    out = args.json or ROOT / "benchmarks" / "results" / f"engines_{datetime.now(timezone.utc):%Y-%m-%d}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'config':<22}{'median s':>10}{'x torch fp32':>14}{'agreement':>11}{'max |dlogit|':>14}{'load s':>8}")
    for name, r in results.items():
        print(f"{name:<22}{r['median_s']:>10.2f}{r['speedup_vs_torch_fp32']:>14.2f}"
              f"{100 * r['label_agreement_vs_torch_fp32']:>10.3f}%{r['max_abs_logit_diff_vs_torch_fp32']:>14.2e}"
              f"{r['load_s']:>8.1f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
