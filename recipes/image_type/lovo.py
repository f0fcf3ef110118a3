"""Leave-one-volume-out evaluation of the ``image-type`` recipe: each real image held out in turn.

    python recipes/image_type/lovo.py DATA OUT [--volumes NAME...] [--epochs 16] [--jobs 1]

For each held-out image (every source of ``sources.py`` unless ``--volumes`` names some), ``medai train`` trains
on the slices of all the *other* images (all slices and copies of an image leave together), with the options
of ``train.py``; then the held-out image itself, as a user would give it, is classified by the trained package
(:class:`medai.pipeline.classify.Classifier`). Writes ``OUT/lovo.csv`` (one row per held-out image: true class,
predicted class, probabilities, modality and region right or wrong) and prints it; exits 1 if any modality is
wrong.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sources import SOURCES, by_name  # noqa: E402
from train import EPOCHS, train  # noqa: E402


def fold_datalist(data: Path, held_out: str, folder: Path) -> Path:
    """A datalist in ``folder`` with every slice of ``data``'s datalist except those of ``held_out``."""
    datalist = json.loads((data / "datalist.json").read_text())
    training = [{**item, "image": str((data / item["image"]).resolve())} for item in datalist["training"]
                if item["volume"] != held_out]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "datalist.json").write_text(json.dumps({"classes": datalist["classes"], "training": training}, indent=1))
    return folder


def fold(data: Path, out: Path, name: str, epochs: int = EPOCHS, progress: str = "none") -> dict:
    """Train without ``name`` and classify it; returns its result row."""
    from medai.pipeline.classify import Classifier, modality_probabilities

    source = by_name(name)
    folder = fold_datalist(data, name, out / name)
    package = train(folder, folder / "package", epochs, progress=progress)
    result = Classifier(str(package / "card.json"), engine="torch")(source.load())
    modality = next(iter(modality_probabilities(result.probabilities)))
    row = {"volume": name, "true": source.label, "predicted": result.label, "modality_right": modality == source.modality,
           "region_right": result.label.split("_", 1)[1] == source.region,
           **{f"p_{k}": round(v, 4) for k, v in sorted(result.probabilities.items())}}
    print(json.dumps(row), flush=True)
    return row


def evaluate(data: Path, out: Path, names: list[str], epochs: int = EPOCHS, jobs: int = 1) -> list[dict]:
    """Every fold (``jobs`` at a time: each trains in its own process); returns one row per held-out image."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(lambda name: fold(data, out, name, epochs), names))
    with open(out / "lovo.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a folder written by build_dataset.py")
    parser.add_argument("out", type=Path)
    parser.add_argument("--volumes", nargs="+", help="hold out only these sources (default: every one)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at the same time (default: %(default)s)")
    args = parser.parse_args()
    rows = evaluate(args.data, args.out, args.volumes or [s.name for s in SOURCES], args.epochs, args.jobs)
    modality = sum(r["modality_right"] for r in rows)
    region = sum(r["region_right"] for r in rows)
    print(f"modality right for {modality}/{len(rows)} held-out images, region right for {region}/{len(rows)}")
    return 0 if modality == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
