"""Classification by a classic classifier on image features (inference mode ``features``).

The card lists the features the classifier takes (``features.names``, medai.features names, in order) and the
settings they were computed with; its ``classifier`` weight is an ONNX model (the scikit-learn pipeline converted by
skl2onnx) taking a double (N, F) tensor ``features`` and giving ``probabilities`` (N, classes). It runs with
ONNX Runtime after its SHA256 is checked; nothing pickled is ever loaded.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from medai.errors import MedAIError
from medai.features import FEATURE_NAMES, FeatureSettings, extract_features
from medai.models.card import ModelCard
from medai.volume import Volume


def feature_probabilities(card: ModelCard, volume: Volume, mask: Volume, label: Optional[int] = None) -> dict[str, float]:
    """Class probabilities, best first, for the segment of ``mask`` (value ``label``, else the card's label).

    ``mask`` must be on ``volume``'s grid (a one-line error otherwise).
    """
    names, settings = _feature_spec(card)
    if label is not None:
        from dataclasses import replace

        settings = replace(settings, label=int(label))
    values = extract_features(volume, mask, settings)
    row = np.array([[values[name] for name in names]], dtype=np.float64)
    if not np.all(np.isfinite(row)):
        raise MedAIError("the segment's features are not finite (a segment of one voxel has no texture)")
    probabilities = run_classifier(card, row)[0]
    classes = card.data["classes"]
    ranked = sorted(zip(classes, probabilities.tolist()), key=lambda item: -item[1])
    return {name: float(p) for name, p in ranked}


def run_classifier(card: ModelCard, features: np.ndarray) -> np.ndarray:
    """Probabilities (N, classes) of the card's ONNX classifier for a (N, F) feature array."""
    from medai.models.weights import verified_weight
    from medai.runtime.onnx_runtime import session_options

    import onnxruntime as ort

    path = verified_weight(card, "classifier")
    ort.disable_telemetry_events()
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(1), providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/... types
        raise MedAIError(f"not a loadable ONNX model ({str(error).splitlines()[0]})", path) from None
    outputs = [output.name for output in session.get_outputs()]
    if "probabilities" not in outputs:
        raise MedAIError(f"the classifier has no 'probabilities' output (outputs: {outputs})", path)
    (probabilities,) = session.run(["probabilities"], {session.get_inputs()[0].name: np.asarray(features, np.float64)})
    if probabilities.shape != (len(features), len(card.data.get("classes", []))):
        raise MedAIError(f"the classifier gives {probabilities.shape[1]} probabilities for "
                         f"{len(card.data.get('classes', []))} classes in the card", path)
    return probabilities


def _feature_spec(card: ModelCard) -> tuple[list[str], FeatureSettings]:
    """The card's feature names (checked against what medai.features computes) and settings."""
    spec = card.data.get("features")
    if card.inference.get("mode") != "features" or not spec:
        raise MedAIError(f"model '{card.id}' is not a feature classifier (inference mode features)")
    names = list(spec["names"])
    unknown = [name for name in names if name not in FEATURE_NAMES]
    if unknown:
        raise MedAIError(f"model '{card.id}' needs features medai does not compute: {', '.join(unknown[:5])}")
    return names, FeatureSettings.from_dict(spec.get("settings"))
