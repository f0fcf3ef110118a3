"""The classification pipeline with the shipped ``image-type`` model on real CT and MR images (volumes, DICOM
slices, a PNG), and its rules: probabilities for every class summing to 1, best first; 2D and 3D inputs; the
features mode's need for a mask; the network loaded once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medai.errors import MedAIError
from medai.models import get_card
from medai.models.card import card_from_dict
from medai.pipeline.classify import Classifier, modality_probabilities

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "recipes" / "image_type"))
from sources import HELD_OUT, SOURCES  # noqa: E402

CLASSES = {"CT_body", "CT_head", "MR_body", "MR_head"}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier("image-type", device="cpu")


def test_the_built_in_card_is_a_trained_classification_package():
    card = get_card("image-type")
    assert card.task == "classification"
    assert set(card.data["classes"]) == CLASSES
    assert card.inference == {**card.inference, "mode": "whole", "output": "softmax"}
    assert card.preprocessing["intensity"]["type"] == "range"  # fixed HU-style scaling, not per image
    assert (card.folder / "training.json").is_file()
    for role, entry in {**card.weights, **card.data["onnx_weights"]}.items():
        assert (card.folder / entry["path"]).stat().st_size < 5_000_000


@pytest.mark.parametrize("source", SOURCES + HELD_OUT, ids=lambda s: s.name)
def test_every_real_ct_and_mr_image_gets_its_modality(classifier, source):
    volume = source.load()
    result = classifier(volume)
    assert set(result.probabilities) == CLASSES
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    values = list(result.probabilities.values())
    assert values == sorted(values, reverse=True) and result.label == next(iter(result.probabilities))
    modalities = modality_probabilities(result.probabilities)
    assert next(iter(modalities)) == source.modality, (source.name, result.probabilities)
    assert result.saliency is None and result.timings["total"] > 0


def test_engines_agree_on_a_real_volume(itk_t1):
    results = {engine: Classifier("image-type", device="cpu", engine=engine)(itk_t1).probabilities
               for engine in ("torch", "onnx", "openvino")}
    for engine in ("onnx", "openvino"):
        for name, p in results["torch"].items():
            assert results[engine][name] == pytest.approx(p, abs=1e-4), engine


def test_a_volume_is_judged_on_its_slices_and_a_2d_image_on_its_one_slice(classifier, itk_t1):
    """A single axial slice of the T1 is a 2D input; the model must still call it MR."""
    from medai.pipeline.classify_input import canonical_image

    image = canonical_image(itk_t1)
    assert image.slice_axis == 2 and len(image.slice_indices(16)) == 16
    middle = itk_t1.array.shape[1] // 2  # the T1's J axis points superior: a J slice is axial
    one = itk_t1.__class__(itk_t1.array[:, middle:middle + 1, :], itk_t1.spacing, itk_t1.origin, itk_t1.direction)
    assert canonical_image(one).slice_axis == 2 and canonical_image(one).shape[2] == 1
    assert next(iter(modality_probabilities(classifier(one).probabilities))) == "MR"


def test_a_features_model_needs_a_mask(itk_t1):
    card = card_from_dict({
        "id": "tumour-grade", "name": "Tumour grade", "version": "1", "task": "classification",
        "input": {"modality": "MR", "dimensions": 3}, "classes": ["low", "high"], "runtime": "onnx",
        "weights": {"classifier": {"path": "model.onnx", "sha256": "0" * 64}},
        "inference": {"mode": "features"}, "features": {"names": ["firstorder_Mean"]},
        "license": "test", "source": "test"})
    with pytest.raises(MedAIError, match="give a mask"):
        Classifier(card, device="cpu")(itk_t1)


def test_a_segmentation_model_is_refused():
    with pytest.raises(MedAIError, match="not a classification model"):
        Classifier("brain-extraction")


def test_constant_and_empty_images_are_refused_in_one_line(classifier, itk_t1):
    with pytest.raises(MedAIError, match="constant image.*nothing to classify"):
        classifier(itk_t1.with_array(np.zeros_like(itk_t1.array)))
    with pytest.raises(MedAIError, match="no finite voxel"):
        classifier(itk_t1.with_array(np.full(itk_t1.array.shape, np.nan, np.float32)))
