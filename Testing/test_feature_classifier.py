"""The classic feature classifier on real labelled data: the 116 regions of the AAL atlas on Colin27's T1.

Each AAL region is a segment (aal.nii.gz value N on ch2.nii.gz's grid). Its class is its tissue group, read from
the atlas' own region code (aal.nii.txt, third column) and checked against the region name: code 9xxx =
cerebellum (Cerebelum_*, Vermis_*, 26 regions), 7xxx = deep grey nuclei (caudate, putamen, pallidum, thalamus,
8), everything else = cerebral cortex (82). Left and right homologues go to the same side of the split (they
are near mirror images), a seeded third of each class's homologue groups is held out: 76 training regions
(16 cerebellum, 54 cortex, 6 nuclei), 40 held out (10, 28, 2).

Measured with seed 0 (split and model), class = argmax of the probabilities: random forest 37/40 = 0.925
(balanced accuracy 0.943), calibrated SVM 40/40 (majority class alone: 28/40 = 0.70). Over split seeds 0-5 the
forest ranged 0.825-0.925 and the SVM 0.846-1.0, but balanced accuracy fell to 0.56-0.67 on splits where the
one held-out pair of deep grey nuclei was missed; the atlas' lobe grouping is much harder (0.35-0.68 in a
first look), not asserted.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from medai import MedAIError
from medai.features import FEATURE_NAMES, FeatureSettings
from medai.features.cases import FeatureCase, VolumeCache
from medai.io import read_volume
from medai.models.card import load_card
from medai.models.weights import sha256_of
from medai.pipeline.classify_features import feature_probabilities, run_classifier
from medai.progress import Progress
from medai.training.features import feature_matrix, fit_classifier, to_onnx, train_feature_classifier

TEMPLATES = Path("/usr/share/mricron/templates")
IMAGE, ATLAS, NAMES = TEMPLATES / "ch2.nii.gz", TEMPLATES / "aal.nii.gz", TEMPLATES / "aal.nii.txt"
SEED = 0
FOREST_FLOOR = 0.9  # measured 0.925 (37/40)
SVM_FLOOR = 0.95  # measured 1.0 (40/40)
CLASSES = ["cerebellum", "cerebral-cortex", "deep-grey-nuclei"]


def tissue_group(name: str, code: str) -> str:
    """The tissue group of an AAL region from its atlas code, checked against its name."""
    group = {"9": "cerebellum", "7": "deep-grey-nuclei"}.get(code[0], "cerebral-cortex")
    by_name = ("cerebellum" if name.startswith(("Cerebelum_", "Vermis_")) else "deep-grey-nuclei"
               if name.split("_")[0] in ("Caudate", "Putamen", "Pallidum", "Thalamus") else "cerebral-cortex")
    assert group == by_name, f"{name} ({code})"
    return group


def regions() -> list[tuple[int, str, str]]:
    """(value, name, tissue group) of every AAL region."""
    if not NAMES.exists():
        pytest.fail(f"{NAMES} is missing: run scripts/setup.sh (it installs mricron-data)")
    rows = [line.split() for line in NAMES.read_text().splitlines() if line.strip()]
    return [(int(value), name, tissue_group(name, code)) for value, name, code in rows]


def split(rows: list[tuple[int, str, str]], seed: int) -> np.ndarray:
    """True for held-out regions: a seeded third of each class's left/right homologue groups."""
    base = [re.sub(r"_[LR]$", "", name) for _, name, _ in rows]
    rng = np.random.default_rng(seed)
    held = set()
    for group in CLASSES:
        homologues = sorted({b for b, (_, _, g) in zip(base, rows) if g == group})
        rng.shuffle(homologues)
        held |= set(homologues[:max(1, round(len(homologues) / 3))])
    return np.array([b in held for b in base])


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """The datalist (training / validation = held out), every region's features, labels and the split."""
    rows = regions()
    held_out = split(rows, SEED)
    assert len(rows) == 116 and held_out.sum() == 40
    entry = lambda value, group: {"image": str(IMAGE), "mask": str(ATLAS), "mask_label": value, "label": group}  # noqa: E731
    folder = tmp_path_factory.mktemp("aal")
    datalist = folder / "aal_tissue.json"
    datalist.write_text(json.dumps({
        "classes": CLASSES,
        "training": [entry(v, g) for (v, _, g), out in zip(rows, held_out) if not out],
        "validation": [entry(v, g) for (v, _, g), out in zip(rows, held_out) if out]}))
    cases = [FeatureCase(IMAGE, ATLAS, value, group) for value, _, group in rows]
    features = feature_matrix(cases, FeatureSettings(), VolumeCache())
    labels = np.array([group for _, _, group in rows])
    return {"folder": folder, "datalist": datalist, "rows": rows, "held_out": held_out, "features": features,
            "labels": labels}


@pytest.fixture(scope="module")
def forest_package(atlas):
    events = io.StringIO()
    package = train_feature_classifier(atlas["datalist"], atlas["folder"] / "aal-tissue-rf", "random-forest",
                                       seed=SEED, progress=Progress("json", stream=events))
    atlas["events"] = [json.loads(line) for line in events.getvalue().splitlines()]
    return package


def test_progress_reports_every_segment_and_the_fit(atlas, forest_package):
    events = atlas["events"]
    assert events[0] == {"event": "start", "cases": 117}
    done = [e for e in events if e["event"] == "case_done"]
    assert len(done) == 117 and done[0]["case"] == "ch2.nii.gz:aal.nii.gz#1"
    assert done[-1]["case"] == "fit random-forest" and done[-1]["output"] == str(forest_package)
    assert done[-1]["validation_accuracy"] == json.loads((forest_package / "training.json").read_text())[
        "validation"]["accuracy"]
    assert events[-1]["event"] == "summary" and events[-1]["ok"] == 117 and events[-1]["failed"] == 0


def test_package_is_a_valid_onnx_feature_card(forest_package):
    assert sorted(p.name for p in forest_package.iterdir()) == ["card.json", "classifier.onnx", "training.json"]
    card = load_card(forest_package / "card.json")  # validated against card.schema.json
    assert card.task == "classification" and card.data["runtime"] == "onnx" and card.inference["mode"] == "features"
    assert card.data["classes"] == CLASSES and card.id == "aal-tissue-rf"
    assert card.data["features"] == {"names": list(FEATURE_NAMES), "settings": FeatureSettings().to_dict()}
    assert card.weights == {"classifier": {"path": "classifier.onnx",
                                           "sha256": sha256_of(forest_package / "classifier.onnx")}}
    assert b"sklearn" not in (forest_package / "classifier.onnx").read_bytes()[:64]  # an ONNX graph, not a pickle
    import onnx

    model = onnx.load(str(forest_package / "classifier.onnx"))
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]


def test_forest_accuracy_on_held_out_regions(atlas, forest_package):
    training = json.loads((forest_package / "training.json").read_text())
    assert training["seed"] == SEED and training["class_counts"] == {"cerebellum": 16, "cerebral-cortex": 54,
                                                                     "deep-grey-nuclei": 6}
    accuracy = training["validation"]["accuracy"]
    print(f"random forest held-out accuracy {accuracy:.3f} on {len(training['validation']['cases'])} regions")
    assert accuracy >= FOREST_FLOOR
    # the package's ONNX classifier gives the same decisions on the same held-out regions
    card = load_card(forest_package / "card.json")
    held = atlas["held_out"]
    onnx_predicted = np.array(CLASSES)[run_classifier(card, atlas["features"][held]).argmax(axis=1)]
    assert list(onnx_predicted) == [case["predicted"] for case in training["validation"]["cases"]]


@pytest.mark.parametrize("classifier", ["random-forest", "svm"])
def test_onnx_probabilities_equal_scikit_learn(atlas, forest_package, classifier):
    """The scikit-learn pipeline (refitted with the same seed on the same features) and its ONNX copy agree on
    every held-out region to 1e-5; for the forest the ONNX file is the package's own."""
    import onnxruntime as ort

    train, held = ~atlas["held_out"], atlas["held_out"]
    pipeline = fit_classifier(atlas["features"][train], atlas["labels"][train], CLASSES, classifier, SEED)
    expected = pipeline.predict_proba(atlas["features"][held])
    if classifier == "random-forest":
        actual = run_classifier(load_card(forest_package / "card.json"), atlas["features"][held])
    else:
        session = ort.InferenceSession(to_onnx(pipeline, len(FEATURE_NAMES)), providers=["CPUExecutionProvider"])
        actual = session.run(["probabilities"], {"features": atlas["features"][held]})[0]
    assert actual.shape == (40, 3)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
    accuracy = np.mean(np.array(CLASSES)[expected.argmax(axis=1)] == atlas["labels"][held])
    print(f"{classifier} held-out accuracy {accuracy:.3f}")
    assert accuracy >= (FOREST_FLOOR if classifier == "random-forest" else SVM_FLOOR)


def test_feature_probabilities_for_one_segment(atlas, forest_package):
    """feature_probabilities on a volume and a binary mask of one held-out region (Vermis_4_5 if held out)."""
    card = load_card(forest_package / "card.json")
    rows, held = atlas["rows"], atlas["held_out"]
    index = next(i for i, (_, name, _) in enumerate(rows) if held[i] and name.startswith("Vermis"))
    value = rows[index][0]
    image, atlas_map = read_volume(IMAGE), read_volume(ATLAS)
    mask = atlas_map.with_array((atlas_map.array == value).astype(np.uint8))
    probabilities = feature_probabilities(card, image, mask)
    assert list(probabilities) == sorted(probabilities, key=probabilities.get, reverse=True)  # best first
    assert set(probabilities) == set(CLASSES) and sum(probabilities.values()) == pytest.approx(1, abs=1e-6)
    expected = run_classifier(card, atlas["features"][index:index + 1])[0]
    for name, p in zip(CLASSES, expected):
        assert probabilities[name] == pytest.approx(p, abs=1e-12)
    assert next(iter(probabilities)) == "cerebellum"
    # the same region named by its value in the atlas label map
    assert feature_probabilities(card, image, atlas_map, label=value) == probabilities


def test_bad_inputs_are_one_line_errors_and_leave_nothing(atlas, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": [
        {"image": str(IMAGE), "mask": str(ATLAS), "mask_label": 1, "label": "cerebral-cortex"},
        {"image": str(IMAGE), "mask": str(tmp_path / "missing.nii.gz"), "mask_label": 95, "label": "cerebellum"}]}))
    with pytest.raises(MedAIError) as error:
        train_feature_classifier(bad, tmp_path / "package")
    assert str(error.value) == f"{tmp_path / 'missing.nii.gz'}: no such file or folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]  # no package, no staging folder left
    with pytest.raises(MedAIError, match="already exists and is not empty"):
        train_feature_classifier(atlas["datalist"], atlas["folder"])
    with pytest.raises(MedAIError, match="unknown classifier 'tree'"):
        train_feature_classifier(atlas["datalist"], tmp_path / "p", classifier="tree")
    one_class = tmp_path / "one.json"
    one_class.write_text(json.dumps({"training": [{"image": "a", "mask": "b", "label": "x"}]}))
    with pytest.raises(MedAIError, match="at least two classes") as error:
        train_feature_classifier(one_class, tmp_path / "p")
    assert str(one_class) in str(error.value)
