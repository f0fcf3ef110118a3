"""Evaluate predicted label maps against references, case by case, and summarise per label and per group.

Files: anything :func:`medai.io.read_volume` reads, a ``.seg.nrrd`` (label values as stored), or -- as either
side, usually the reference -- a DICOM SEG or RTSTRUCT file, which needs its image series (label values are SEG
segment numbers / RTSTRUCT ROI numbers). Labels are matched by value. When the grids differ, the prediction is
resampled onto the reference grid (nearest neighbour) and the row says ``resampled``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.evaluation.segmentation_metrics import METRICS, segmentation_metrics
from medai.volume import Volume

SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Columns of metrics.csv before the metrics.
ROW_KEYS = ("case", "group", "label", "name", "resampled")


def _dicom_kind(path: Path) -> Optional[str]:
    """'seg', 'rtstruct' or None for a file that is neither (or not DICOM)."""
    from medai.io.dicom.series.scan import read_header
    from medai.io.dispatch import image_kind

    if not path.is_file() or image_kind(path) != "dicom":
        return None
    header = read_header(path)  # an unreadable DICOM file is a one-line error naming it
    uid = str(header.dataset.get("SOPClassUID", "")) if header else ""
    return "seg" if uid in SEG_SOP_CLASSES else "rtstruct" if uid == RTSTRUCT_SOP_CLASS else None


def read_label_map(path: PathLike, series: Optional[PathLike] = None) -> tuple[Volume, dict[int, str]]:
    """A label map (integer Volume) and {value: name} from any supported file; see the module notes."""
    p = Path(path)
    if not p.exists():
        raise MedAIError("no such file or folder", p)
    names: dict[int, str] = {}
    kind = _dicom_kind(p)
    if kind:
        if series is None:
            raise MedAIError(f"is a DICOM {'SEG' if kind == 'seg' else 'RTSTRUCT'}; give its image series "
                             "(--reference-series DIR, or a 'series' column in the cases CSV)", p)
        if kind == "seg":
            from medai.io.dicom.seg import read_dicom_seg as reader
        else:
            from medai.io.dicom.rtstruct import read_rtstruct as reader
        volume, labels = reader(p, series)
        names = {label.value: label.name for label in labels}
    elif p.name.lower().endswith(".seg.nrrd"):
        from medai.io.seg_nrrd import read_seg_nrrd

        volume, labels = read_seg_nrrd(p)
        names = {label.value: label.name for label in labels}
    else:
        from medai.io import read_volume

        volume = read_volume(p)
    array = np.asarray(volume.array)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise MedAIError("is not a label map (it holds non-integer values)", p)
        array = array.astype(np.int64)
    if array.min(initial=0) < 0:
        raise MedAIError("is not a label map (it holds negative values)", p)
    return volume.with_array(array), names


def evaluate_case(case: str, prediction: PathLike, reference: PathLike, series: Optional[PathLike] = None,
                  labels: Optional[Sequence[int]] = None, group: Optional[str] = None) -> list[dict]:
    """Rows (one per label) for one case; ``series`` is the image series of a DICOM SEG/RTSTRUCT file."""
    from medai.resample import resample_to_grid

    ref, ref_names = read_label_map(reference, series)
    pred, pred_names = read_label_map(prediction, series)
    resampled = not pred.same_grid(ref)
    if resampled:
        pred = resample_to_grid(pred, ref, "nearest")
    names = {**pred_names, **ref_names}
    rows = []
    for value, metrics in segmentation_metrics(pred, ref, labels).items():
        rows.append({"case": str(case), "group": group, "label": value, "name": names.get(value, f"label {value}"),
                     "resampled": resampled, **metrics})
    return rows


def evaluate_cases(pairs: Sequence[Sequence], labels: Optional[Sequence[int]] = None,
                   groups: Optional[dict[str, str]] = None, series: Optional[PathLike] = None) -> list[dict]:
    """Rows for every case of ``pairs`` = [(case, prediction_path, reference_path[, series_folder]), ...].

    ``labels`` restricts the label values (default: every non-zero value in either map of a case); ``groups``
    maps case -> group; ``series`` is the default image series for DICOM SEG/RTSTRUCT files.
    """
    rows: list[dict] = []
    for pair in pairs:
        case, prediction, reference = pair[:3]
        case_series = pair[3] if len(pair) > 3 and pair[3] else series
        group = None if groups is None else groups.get(str(case))
        rows.extend(evaluate_case(case, prediction, reference, case_series, labels, group))
    return rows


def _stats(values: list[float]) -> dict:
    finite = [v for v in values if not math.isnan(v)]
    out = {"n": len(values), "n_undefined": len(values) - len(finite)}
    if finite:
        a = np.asarray(finite, float)
        out.update(mean=float(a.mean()), std=float(a.std()), median=float(np.median(a)))
    else:
        out.update(mean=None, std=None, median=None)
    return out


def _per_label(rows: list[dict]) -> dict:
    out = {}
    for value in sorted({row["label"] for row in rows}):
        mine = [row for row in rows if row["label"] == value]
        out[str(value)] = {"name": mine[0]["name"], "cases": len(mine),
                           **{m: _stats([float(row[m]) for row in mine]) for m in METRICS}}
    return out


def summarize(rows: list[dict]) -> dict:
    """{"per_label": {label: {metric: {n, n_undefined, mean, std, median}}}, "per_group": {group: per_label}}.

    std is the population standard deviation (ddof=0); NaN values are left out and counted as n_undefined.
    """
    summary = {"cases": len({row["case"] for row in rows}), "per_label": _per_label(rows)}
    group_names = sorted({row["group"] for row in rows if row["group"] is not None})
    if group_names:
        summary["per_group"] = {g: _per_label([row for row in rows if row["group"] == g]) for g in group_names}
    return summary


def _cell(value):
    if isinstance(value, float) and math.isnan(value):
        return ""
    if value is None:
        return ""
    return value


def publish_outputs(folder: PathLike, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Call each ``writers[name](path)`` in a hidden staging folder, then move the files into ``folder``.

    Nothing appears in ``folder`` until every file is complete; a new ``folder`` appears whole, with all files.
    """
    from medai.io.atomic import publish_files, publish_folder, staging_folder

    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise MedAIError("exists and is not a folder", out)
    existing = out.is_dir() and any(out.iterdir())
    parent = out if existing else out.parent
    parent.mkdir(parents=True, exist_ok=True)
    with staging_folder(parent) as staging:
        staged = staging / "outputs"
        staged.mkdir()  # made like any folder (umask), unlike the private staging folder itself
        for name, write in writers.items():
            write(staged / name)
        if existing:
            publish_files(staged, list(writers)[0], out)
        else:
            publish_folder(staged, out)
    return [out / name for name in writers]


def write_outputs(rows: list[dict], summary: dict, folder: PathLike) -> list[Path]:
    """Write metrics.csv, summary.json and dice_boxplot.png into ``folder`` (made if missing), all at once."""

    def write_csv(path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(ROW_KEYS + METRICS)
            for row in rows:
                writer.writerow([_cell(row[k]) for k in ROW_KEYS + METRICS])

    def write_json(path: Path) -> None:
        path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")

    return publish_outputs(folder, {"metrics.csv": write_csv, "summary.json": write_json,
                                    "dice_boxplot.png": lambda path: _plot_dice(rows, summary, path)})


def _plot_dice(rows: list[dict], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_label = summary["per_label"]
    keys = list(per_label)
    data = [[row["dice"] for row in rows if str(row["label"]) == key] for key in keys]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(keys) + 2), 4))
    ax.boxplot(data)
    ax.set_xticks(range(1, len(keys) + 1), [f"{key}: {per_label[key]['name']}" for key in keys], rotation=20)
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Dice per label ({summary['cases']} case{'' if summary['cases'] == 1 else 's'})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_table(rows: list[dict]) -> str:
    """A short text table: one line per case and label."""
    lines = [f"{'case':<16} {'label':<20} {'Dice':>6} {'HD95 mm':>8} {'MSD mm':>7} {'dV %':>7}"]
    for row in rows:
        f = lambda v, d: "n/a" if math.isnan(v) else f"{v:.{d}f}"  # noqa: E731
        label = f"{row['label']} {row['name']}"[:20]
        lines.append(f"{row['case'][:16]:<16} {label:<20} {row['dice']:>6.3f} {f(row['hd95_mm'], 2):>8} "
                     f"{f(row['msd_mm'], 2):>7} {f(row['volume_difference_percent'], 1):>7}"
                     + ("  (prediction resampled)" if row["resampled"] else ""))
    return "\n".join(lines)
