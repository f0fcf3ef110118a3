"""``medai train --features``: a classic classifier (random forest or SVM) on image features, as a model package.

``OUTPUT/``:

* ``card.json`` -- task classification, runtime onnx, inference mode ``features``, the feature names and
  settings, the classes, and ``weights.classifier`` (``classifier.onnx`` with its SHA256);
* ``classifier.onnx`` -- the fitted pipeline (a random forest, or StandardScaler + calibrated SVM) converted by
  skl2onnx: double input ``features`` (N, F), output ``probabilities`` (N, classes), no ZipMap, so loading
  runs no pickled code;
* ``training.json`` -- classifier and parameters, seed, settings, cases, class counts, training and validation
  accuracy with per-case predictions, library versions.

The folder is assembled in a hidden staging folder and moved into place at the end (no partial package).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from medai.errors import MedAIError
from medai.features import FEATURE_NAMES, FeatureSettings
from medai.features.cases import FeatureCase, VolumeCache, case_features, read_feature_datalist

if TYPE_CHECKING:
    from medai.progress import Progress

CLASSIFIERS = ("random-forest", "svm")
#: Trees in the random forest: enough that its probabilities are smooth, small enough for a small ONNX file.
FOREST_TREES = 200
ONNX_INPUT = "features"
ONNX_PROBABILITIES = "probabilities"

def make_classifier(classifier: str, seed: int, smallest_class: int = 5):
    """An unfitted scikit-learn pipeline: a random forest, or StandardScaler + RBF SVM with sigmoid calibration.

    The forest takes the features as they are: trees do not depend on a feature's scale, and a scaler in front
    moves split thresholds onto values where ONNX's and scikit-learn's float rounding disagree (measured:
    probabilities 0.02 apart on the AAL regions). The SVM is calibrated by ``CalibratedClassifierCV(SVC,
    ensemble=False)`` with stratified ``cv`` = min(5, ``smallest_class``) folds (scikit-learn's replacement
    for ``SVC(probability=True)``).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if classifier == "random-forest":
        return Pipeline([("classify", RandomForestClassifier(n_estimators=FOREST_TREES, random_state=seed,
                                                             class_weight="balanced"))])
    if classifier == "svm":
        if smallest_class < 2:
            raise MedAIError("the SVM's probability calibration needs at least two training cases of every class")
        svm = SVC(kernel="rbf", class_weight="balanced", random_state=seed)
        calibrated = CalibratedClassifierCV(svm, method="sigmoid", cv=min(5, smallest_class), ensemble=False)
        return Pipeline([("scale", StandardScaler()), ("classify", calibrated)])
    raise MedAIError(f"unknown classifier '{classifier}' (choose from {', '.join(CLASSIFIERS)})")


def feature_matrix(cases: Sequence[FeatureCase], settings: FeatureSettings, cache: Optional[VolumeCache] = None,
                   progress: Optional["Progress"] = None, first_index: int = 0) -> np.ndarray:
    """Features (cases, len(FEATURE_NAMES)) in FEATURE_NAMES order; a non-finite value is an error naming the mask.

    With ``progress`` each case is one of its cases, numbered from ``first_index``.
    """
    cache = cache or VolumeCache()
    rows = []
    for index, case in enumerate(cases):
        if progress:
            progress.begin_case(first_index + index, case.name)
        values = case_features(case, settings, cache)
        row = np.array([values[name] for name in FEATURE_NAMES], dtype=float)
        if not np.all(np.isfinite(row)):
            bad = [name for name, v in zip(FEATURE_NAMES, row) if not np.isfinite(v)]
            raise MedAIError(f"segment {case.mask_label or settings.label}: features {bad[:3]} are not finite "
                             "(a segment of one voxel has no texture)", case.mask)
        rows.append(row)
        if progress:
            progress.case_done(f"{len(row)} features")
    return np.stack(rows)


def fit_classifier(features: np.ndarray, labels: Sequence[str], classes: Sequence[str], classifier: str, seed: int):
    """Fit the pipeline on ``features`` / ``labels``; its ``classes_`` follow ``classes`` (the card's order)."""
    missing = sorted(set(classes) - set(labels))
    if missing:
        raise MedAIError(f"no training case of class {missing}: every class needs examples")
    pipeline = make_classifier(classifier, seed, min(list(labels).count(c) for c in classes))
    pipeline.fit(features, np.asarray(labels))
    assert list(pipeline.classes_) == sorted(classes)  # sklearn sorts; the card lists classes in that order
    return pipeline


def to_onnx(pipeline, n_features: int) -> bytes:
    """The fitted pipeline as ONNX bytes: double input (N, n_features), probability tensor output (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    with warnings.catch_warnings():  # skl2onnx's SVC converter reads probA_/probB_, deprecated in scikit-learn 1.9
        warnings.filterwarnings("ignore", message="Attribute `prob[AB]_` was deprecated", category=FutureWarning)
        model = convert_sklearn(pipeline, initial_types=[(ONNX_INPUT, DoubleTensorType([None, n_features]))],
                                options={id(pipeline.steps[-1][1]): {"zipmap": False}},
                                target_opset={"": 17, "ai.onnx.ml": 3})
    outputs = [output.name for output in model.graph.output]
    if ONNX_PROBABILITIES not in outputs:
        raise RuntimeError(f"skl2onnx produced outputs {outputs}, expected '{ONNX_PROBABILITIES}'")
    return model.SerializeToString()


def train_feature_classifier(datalist: Path, output: Path, classifier: str = "random-forest", seed: int = 0,
                             model_id: Optional[str] = None, progress: Optional["Progress"] = None,
                             settings: Optional[FeatureSettings] = None) -> Path:
    """Train a classic classifier on the features of a feature datalist and write its package to ``output``.

    ``progress`` (a :class:`medai.progress.Progress`) sees one case per segment and a last one for the fit;
    any failing segment stops the run with its one-line error (no partial package). Returns ``output``. The training set's class order is sorted (scikit-learn's); the card's ``classes`` follow it.
    """
    datalist, output = Path(datalist), Path(output)
    if classifier not in CLASSIFIERS:
        raise MedAIError(f"unknown classifier '{classifier}' (choose from {', '.join(CLASSIFIERS)})")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise MedAIError("already exists and is not empty; choose a new output folder", output)
    if not output.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", output.parent)
    settings = settings or FeatureSettings()
    data = read_feature_datalist(datalist)
    classes = sorted(data.classes)
    cache = VolumeCache()
    if progress:
        progress.start(len(data.training) + len(data.validation) + 1)
    train_x = feature_matrix(data.training, settings, cache, progress)
    valid_x = feature_matrix(data.validation, settings, cache, progress, len(data.training)) if data.validation else None
    if progress:
        progress.begin_case(len(data.training) + len(data.validation), f"fit {classifier}")
    train_y = [case.label for case in data.training]
    pipeline = fit_classifier(train_x, train_y, classes, classifier, seed)
    report: dict[str, Any] = {"training": _evaluation(pipeline, data.training, train_x)}
    if valid_x is not None:
        report["validation"] = _evaluation(pipeline, data.validation, valid_x)
    onnx_bytes = to_onnx(pipeline, len(FEATURE_NAMES))
    model_id = model_id or _id_from(output.name)
    training = {"datalist": str(datalist), "classifier": classifier,
                "parameters": {k: _plain(v) for k, v in pipeline.steps[-1][1].get_params().items()},
                "seed": seed, "settings": settings.to_dict(), "classes": classes,
                "class_counts": {c: train_y.count(c) for c in classes}, **report, "versions": _versions()}
    card = feature_card(model_id, classes, settings, classifier, datalist)
    _write_package(output, card, onnx_bytes, training)
    if progress:
        which = "validation" if "validation" in report else "training"
        progress.case_done(str(output), **{f"{which}_accuracy": round(report[which]["accuracy"], 4)})
        progress.summary()
    return output


def feature_card(model_id: str, classes: list[str], settings: FeatureSettings, classifier: str,
                 datalist: Path) -> dict[str, Any]:
    """The card of a feature classifier (weights filled in when the ONNX file is written)."""
    kind = {"random-forest": "random forest", "svm": "calibrated support vector machine"}[classifier]
    return {"schema_version": 1, "id": model_id, "name": model_id, "version": "1",
            "task": "classification",
            "description": f"A {kind} on {len(FEATURE_NAMES)} image features (first-order, shape, GLCM) of a segment.",
            "input": {"modality": "any", "dimensions": 3}, "runtime": "onnx", "classes": list(classes),
            "features": {"names": list(FEATURE_NAMES), "settings": settings.to_dict()},
            "inference": {"mode": "features", "output": "probability"},
            "license": "trained by the user; the licence of the training data applies",
            "source": f"medai train --features on {datalist.name}"}


def _write_package(output: Path, card: dict[str, Any], onnx_bytes: bytes, training: dict[str, Any]) -> None:
    """Assemble the package beside ``output`` and move it into place whole."""
    from medai.io.atomic import publish_folder, staging_folder
    from medai.models.card import card_from_dict
    from medai.models.weights import sha256_of

    with staging_folder(output.parent) as stage:
        package = stage / "package"
        package.mkdir()
        (package / "classifier.onnx").write_bytes(onnx_bytes)
        weight = {"path": "classifier.onnx", "sha256": sha256_of(package / "classifier.onnx")}
        card = {**card, "weights": {"classifier": weight}}
        card_from_dict(card, folder=package, origin=output / "card.json")
        (package / "training.json").write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
        (package / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        publish_folder(package, output)


def _evaluation(pipeline, cases: Sequence[FeatureCase], features: np.ndarray) -> dict[str, Any]:
    probabilities = pipeline.predict_proba(features)
    predicted = [str(pipeline.classes_[i]) for i in probabilities.argmax(axis=1)]
    truth = [case.label for case in cases]
    return {"accuracy": float(np.mean([p == t for p, t in zip(predicted, truth)])),
            "cases": [{**case.to_dict(), "predicted": p} for case, p in zip(cases, predicted)]}


def _id_from(name: str) -> str:
    """A card id from a folder name (lower case, [a-z0-9._-])."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return text or "feature-classifier"


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _versions() -> dict[str, str]:
    from importlib import metadata

    return {name: metadata.version(name) for name in ("scikit-learn", "skl2onnx", "onnx", "numpy")}
