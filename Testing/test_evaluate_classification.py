"""Classification evaluation (``medai evaluate --task classification``) on real scores, checked number by number
against scikit-learn as the independent implementation, plus hand-checked tiny cases and the error rules.

Real scores: the built-in brain-extraction model's voxel-wise brain probability on the ITK T1 and on Colin27
(its network output, before thresholding), sampled inside each reference brain mask and in a 4-voxel shell
around it; and a Gaussian naive Bayes classifier's probabilities for four real Colin27 tissue classes (outside
the brain, AAL cerebrum, AAL cerebellum, brain without an AAL label), fitted on other voxels than it is scored on.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from conftest import COLIN27
from medai.cli.main import main
from medai.evaluation import classification_metrics, roc_curve
from medai.io import read_volume
from medai.metrics import dice

TOL = 1e-12
AAL = COLIN27.parent / "aal.nii.gz"


def brain_probability(volume) -> np.ndarray:
    """The brain-extraction model's brain probability per voxel of ``volume`` (K,J,I), as the Segmenter computes
    it before thresholding: canonical orientation, the card's inference mode, back to the input's voxel order."""
    from medai.pipeline.inference import MODES
    from medai.pipeline.orientation import canonical_reorientation
    from medai.pipeline.segment import Segmenter

    segmenter = Segmenter("brain-extraction", "cpu", engine="torch")  # the reference runtime
    card = segmenter.card
    reorientation = canonical_reorientation(volume, card.preprocessing["orientation"])
    image = reorientation.apply(volume.array.astype(np.float32).transpose(2, 1, 0))
    scores = MODES[card.inference["mode"]](image, segmenter.load(), card.inference, card.preprocessing["intensity"])
    return reorientation.invert(scores).transpose(0, 3, 2, 1)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def brain_voxels(itk_t1, itk_t1_brain_mask, colin27, colin27_brain_mask):
    """{volume: (reference is-brain (N,), p_background (N,), p_brain (N,), whole-volume Dice of p > 0.5)}."""
    out = {}
    for name, image, mask in (("itk_t1", itk_t1, itk_t1_brain_mask), ("colin27", colin27, colin27_brain_mask)):
        brain = mask.array > 0
        scores = brain_probability(image)
        shell = ndimage.binary_dilation(brain, iterations=4) & ~brain
        rng = np.random.default_rng(0)
        index = np.concatenate([rng.choice(np.flatnonzero(brain), 1000, replace=False),
                                rng.choice(np.flatnonzero(shell), 1000, replace=False)])
        out[name] = (brain.ravel()[index], scores[0].ravel()[index].astype(float),
                     scores[1].ravel()[index].astype(float), dice(scores[1] > 0.5, brain))
    return out


@pytest.fixture(scope="module")
def brain_csvs(tmp_path_factory, brain_voxels):
    """predictions.csv (as ``medai classify`` writes it) and references.csv (shuffled, with a ``volume`` column)."""
    folder = tmp_path_factory.mktemp("brain")
    predictions, references = [], []
    for name, (truth, p_background, p_brain, _) in brain_voxels.items():
        for n, (t, pb, pf) in enumerate(zip(truth, p_background, p_brain)):
            label = "brain" if pf > 0.5 else "background"
            predictions.append([f"{name}/voxel{n}", label, repr(float(pb)), repr(float(pf))])
            references.append([f"{name}/voxel{n}", "brain" if t else "background", name])
    np.random.default_rng(5).shuffle(references)
    return (_write_csv(folder / "predictions.csv", ["input", "label", "p_background", "p_brain"], predictions),
            _write_csv(folder / "references.csv", ["input", "label", "volume"], references))


def _sklearn(truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict:
    """The same metrics from scikit-learn (classes 0..C-1; undefined values NaN)."""
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                                 precision_recall_fscore_support, recall_score, roc_auc_score)

    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                     zero_division=np.nan)
    specificity = [recall_score(truth != c, predicted != c) if (truth != c).any() else math.nan for c in labels]
    auc = [roc_auc_score(truth == c, probabilities[:, c]) if 0 < (truth == c).sum() < truth.size else math.nan
           for c in labels]
    return {"accuracy": accuracy_score(truth, predicted),
            "balanced_accuracy": balanced_accuracy_score(truth, predicted),
            "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
            "precision": precision, "recall": recall, "f1": f1, "support": support, "specificity": specificity,
            "roc_auc": auc}


def _assert_matches_sklearn(ours: dict, classes: list[str], truth, predicted, probabilities) -> None:
    ref = _sklearn(np.asarray(truth), np.asarray(predicted), np.asarray(probabilities), len(classes))
    assert ours["n"] == len(truth)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"], abs=TOL)
    assert ours["balanced_accuracy"] == pytest.approx(ref["balanced_accuracy"], abs=TOL)
    assert ours["confusion_matrix"] == ref["confusion_matrix"]
    for c, name in enumerate(classes):
        row = ours["per_class"][name]
        assert row["support"] == ref["support"][c]
        for metric in ("precision", "recall", "f1", "specificity", "roc_auc"):
            value = math.nan if row[metric] is None else row[metric]  # JSON null
            expected = ref[metric][c]
            assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected, abs=TOL), \
                (name, metric, value, expected)
    for metric in ("precision", "recall", "f1", "specificity", "roc_auc"):
        values = [v for v in ref[metric] if not math.isnan(v)]
        macro = ours["macro"][metric]
        assert macro == pytest.approx(np.mean(values), abs=TOL) if values else macro is None


def _rows_of(predictions: Path, references: Path, classes: list[str], group=None):
    """(truth, predicted, probabilities) in the reference file's order, read back from the CSVs."""
    by_input = {row["input"]: row for row in _read_csv(predictions)}
    truth, predicted, probabilities = [], [], []
    for row in _read_csv(references):
        if group is not None and row["volume"] != group:
            continue
        pred = by_input[row["input"]]
        truth.append(classes.index(row["label"]))
        predicted.append(classes.index(pred["label"]))
        probabilities.append([float(pred[f"p_{c}"]) for c in classes])
    return np.array(truth), np.array(predicted), np.array(probabilities)


def test_brain_voxels_match_sklearn(tmp_path, brain_csvs, capsys):
    """Binary brain-vs-background on 4000 real voxel scores: every metric, the confusion matrix and the ROC curve
    equal scikit-learn's to 1e-12; the CSV carries the same numbers as the JSON; both plots are written."""
    from sklearn.metrics import roc_curve as sk_roc_curve

    predictions, references = brain_csvs
    out = tmp_path / "out"
    assert main(["evaluate", str(predictions), str(references), "-o", str(out)]) == 0  # task detected from .csv
    assert "brain: sensitivity" in capsys.readouterr().out  # positive class = second p_ column by default
    report = json.loads((out / "metrics.json").read_text())
    classes = report["classes"]
    assert classes == ["background", "brain"] and report["positive"] == "brain" and report["inputs"] == 4000
    truth, predicted, probabilities = _rows_of(predictions, references, classes)
    _assert_matches_sklearn(report["overall"], classes, truth, predicted, probabilities)
    fpr, tpr, thresholds = sk_roc_curve(truth == 1, probabilities[:, 1])
    roc = report["overall"]["roc"]["brain"]
    np.testing.assert_allclose(roc["fpr"], fpr, atol=TOL)
    np.testing.assert_allclose(roc["tpr"], tpr, atol=TOL)
    assert roc["thresholds"][0] is None and np.isinf(thresholds[0])  # +inf is JSON null
    np.testing.assert_array_equal(roc["thresholds"][1:], thresholds[1:])
    assert 0.7 < report["overall"]["per_class"]["brain"]["roc_auc"] < 1  # half the voxels lie near the edge: hard
    csv_rows = {(r["group"], r["class"]): r for r in _read_csv(out / "metrics.csv")}
    assert set(csv_rows) == {("", "background"), ("", "brain"), ("", "macro")}
    for name in classes:
        for metric in ("precision", "recall", "specificity", "f1", "roc_auc"):
            assert float(csv_rows["", name][metric]) == report["overall"]["per_class"][name][metric]
    assert float(csv_rows["", "macro"]["accuracy"]) == report["overall"]["accuracy"]
    for png in ("roc.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "metrics.csv", "metrics.json", "roc.png"]


def test_groups_make_a_bias_visible(tmp_path, brain_csvs, brain_voxels):
    """Grouped by the volume a voxel came from: each group's metrics equal scikit-learn's on that group's rows, and
    the model is visibly worse on Colin27 than on the ITK T1 -- the same ordering as its whole-volume Dice."""
    predictions, references = brain_csvs
    out = tmp_path / "out"
    assert main(["evaluate", "--task", "classification", str(predictions), str(references), "--group", "volume",
                 "--positive", "brain", "-o", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    classes = report["classes"]
    assert sorted(report["per_group"]) == ["colin27", "itk_t1"] and report["group_column"] == "volume"
    for group, metrics in report["per_group"].items():
        assert metrics["n"] == 2000
        _assert_matches_sklearn(metrics, classes, *_rows_of(predictions, references, classes, group))
    itk, colin = (report["per_group"][g]["per_class"]["brain"] for g in ("itk_t1", "colin27"))
    assert brain_voxels["itk_t1"][3] > brain_voxels["colin27"][3]  # whole-volume Dice: 0.966 vs 0.936
    assert itk["f1"] - colin["f1"] > 0.1 and itk["roc_auc"] - colin["roc_auc"] > 0.1
    rows = _read_csv(out / "metrics.csv")
    assert [(r["group"], r["class"]) for r in rows][3:] == [("colin27", "background"), ("colin27", "brain"),
                                                            ("colin27", "macro"), ("itk_t1", "background"),
                                                            ("itk_t1", "brain"), ("itk_t1", "macro")]


@pytest.fixture(scope="module")
def tissue_csvs(tmp_path_factory, colin27, colin27_brain_mask):
    """Four real Colin27 classes scored by a Gaussian naive Bayes model (T1 intensity, S and P position) fitted on
    3000 voxels and applied to 3000 others near the brain; grouped by hemisphere (L coordinate sign)."""
    from sklearn.naive_bayes import GaussianNB

    classes = ["outside", "cerebrum", "cerebellum", "brain_other"]
    aal = read_volume(AAL).array
    brain = colin27_brain_mask.array > 0
    truth = np.where(brain, 3, 0)
    truth[(aal >= 1) & (aal <= 90)] = 1
    truth[(aal >= 91) & (aal <= 116)] = 2
    near = np.flatnonzero(ndimage.binary_dilation(brain, iterations=6))
    rng = np.random.default_rng(1)
    chosen = rng.choice(near, 6000, replace=False)
    fit, scored = chosen[:3000], chosen[3000:]

    def features(flat):
        k, j, i = np.unravel_index(flat, aal.shape)
        lps = colin27.lps_points(np.column_stack([i, j, k]))
        return np.column_stack([colin27.array.ravel()[flat].astype(float), lps[:, 2], lps[:, 1]]), lps[:, 0]

    model = GaussianNB().fit(features(fit)[0], truth.ravel()[fit])
    x, left = features(scored)
    probabilities = model.predict_proba(x)
    folder = tmp_path_factory.mktemp("tissue")
    predictions = [[f"/data/colin27/v{n}.nii.gz", classes[int(p.argmax())], *(repr(float(v)) for v in p)]
                   for n, p in enumerate(probabilities)]
    references = [[f"v{n}.nii.gz", classes[t], "left" if l > 0 else "right"]
                  for n, (t, l) in enumerate(zip(truth.ravel()[scored], left))]
    return (classes,
            _write_csv(folder / "predictions.csv", ["input", "label", *(f"p_{c}" for c in classes)], predictions),
            _write_csv(folder / "references.csv", ["input", "label", "volume"], references))


def test_four_real_tissue_classes_match_sklearn(tmp_path, tissue_csvs):
    """Multi-class (one-vs-rest AUC, macro averages) on real classes and real probabilities; predictions list full
    paths, references file names: rows are matched by file name. Per hemisphere too."""
    from sklearn.metrics import roc_auc_score

    classes, predictions, references = tissue_csvs
    out = tmp_path / "out"
    assert main(["evaluate", str(predictions), str(references), "--group", "volume", "-o", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["classes"] == classes and report["positive"] is None
    by_name = {Path(r["input"]).name: r for r in _read_csv(predictions)}
    refs = _read_csv(references)
    truth = np.array([classes.index(r["label"]) for r in refs])
    predicted = np.array([classes.index(by_name[r["input"]]["label"]) for r in refs])
    probabilities = np.array([[float(by_name[r["input"]][f"p_{c}"]) for c in classes] for r in refs])
    _assert_matches_sklearn(report["overall"], classes, truth, predicted, probabilities)
    assert report["overall"]["macro"]["roc_auc"] == pytest.approx(
        roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"), abs=TOL)
    assert min(np.bincount(truth, minlength=4)) > 100  # every class really present
    hemisphere = np.array([r["volume"] for r in refs])
    for side in ("left", "right"):
        rows = hemisphere == side
        _assert_matches_sklearn(report["per_group"][side], classes, truth[rows], predicted[rows], probabilities[rows])



def test_reads_what_medai_classify_writes(tmp_path, tissue_csvs):
    """The tissue predictions rewritten by ``medai classify``'s own CSV writer (probabilities rounded to 6 decimals,
    many ties at 0.000000): evaluated like any other, equal to scikit-learn on the values as written."""
    from medai.cli.classify import write_csv

    classes, predictions, references = tissue_csvs
    rows = [{"input": r["input"], "label": r["label"], "probabilities": {c: float(r[f"p_{c}"]) for c in classes}}
            for r in _read_csv(predictions)]
    write_csv(tmp_path / "results.csv", classes, rows)
    out = tmp_path / "out"
    assert main(["evaluate", str(tmp_path / "results.csv"), str(references), "-o", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    by_name = {Path(r["input"]).name: r for r in _read_csv(tmp_path / "results.csv")}
    refs = _read_csv(references)
    truth = np.array([classes.index(r["label"]) for r in refs])
    predicted = np.array([classes.index(by_name[r["input"]]["label"]) for r in refs])
    probabilities = np.array([[float(by_name[r["input"]][f"p_{c}"]) for c in classes] for r in refs])
    assert (probabilities == 0).sum() > 100  # rounding made ties
    _assert_matches_sklearn(report["overall"], classes, truth, predicted, probabilities)

def test_tiny_case_by_hand_with_ties_and_a_missing_class():
    """Five rows, three classes, 'bird' predicted once but never true; scores tied across classes of the truth."""
    classes = ["cat", "dog", "bird"]
    truth = np.array([0, 1, 1, 0, 1])
    predicted = np.array([0, 1, 0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.2, 0.7, 0.1]])
    m = classification_metrics(truth, predicted, p, classes)
    assert m["confusion_matrix"] == [[1, 0, 1], [1, 2, 0], [0, 0, 0]]
    assert m["accuracy"] == 3 / 5 and m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    cat, dog, bird = (m["per_class"][c] for c in classes)
    assert (cat["precision"], cat["recall"], cat["specificity"], cat["f1"]) == (0.5, 0.5, pytest.approx(2 / 3), 0.5)
    # cat's AUC: positives score 0.7, 0.3; negatives 0.4, 0.4, 0.2 -> pairs won 0.7>all (3), 0.3>0.2 (1) = 4/6
    assert cat["roc_auc"] == pytest.approx(4 / 6, abs=TOL)
    # dog: positives 0.5, 0.4, 0.7; negatives 0.2, 0.3 -> all 6 pairs won
    assert dog["roc_auc"] == 1.0 and dog["precision"] == 1.0 and dog["recall"] == pytest.approx(2 / 3)
    # bird: never true -> recall and AUC undefined with a reason; precision 0 (1 false positive), F1 0
    assert math.isnan(bird["recall"]) and math.isnan(bird["roc_auc"]) and bird["precision"] == 0 and bird["f1"] == 0
    assert "no reference row is 'bird'" in bird["undefined"]["roc_auc"]
    assert set(bird["undefined"]) == {"recall", "roc_auc"}
    assert m["macro"]["recall"] == pytest.approx((1 / 2 + 2 / 3) / 2) and m["macro"]["roc_auc"] == pytest.approx(5 / 6)

    # ties within one class's scores: one ROC point per distinct score, AUC counts tied pairs as half
    fpr, tpr, thresholds = roc_curve(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.1]))
    assert fpr.tolist() == [0, 0.5, 1] and tpr.tolist() == [0, 1, 1] and thresholds.tolist() == [np.inf, 0.5, 0.1]
    tied = classification_metrics(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0]),
                                  np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]), ["a", "b"])
    assert tied["per_class"]["b"]["roc_auc"] == 0.75  # 2 pairs tied (1/2 each) + 2 won, of 4
    _assert_matches_sklearn(tied, ["a", "b"], [1, 0, 1, 0], [1, 1, 1, 0],
                            [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])

    # a single-class reference set: specificity and AUC undefined for that class, never a crash
    alone = classification_metrics(np.array([1, 1]), np.array([1, 0]), np.array([[0.2, 0.8], [0.6, 0.4]]), ["a", "b"])
    assert math.isnan(alone["per_class"]["b"]["specificity"]) and math.isnan(alone["per_class"]["b"]["roc_auc"])
    assert "no negatives" in alone["per_class"]["b"]["undefined"]["roc_auc"] and alone["accuracy"] == 0.5


PREDICTIONS = "input,label,p_cat,p_dog\na.png,cat,0.8,0.2\nb.png,dog,0.3,0.7\nc.png,dog,0.1,0.9\n"
REFERENCES = "input,label,site\na.png,cat,x\nb.png,cat,x\nc.png,dog,y\n"


@pytest.mark.parametrize("problem, predictions, references, extra, culprit, words", [
    ("missing input", PREDICTIONS.replace("c.png,dog,0.1,0.9\n", ""), REFERENCES, [], "predictions.csv", "c.png"),
    ("extra input", PREDICTIONS + "d.png,cat,0.5,0.5\n", REFERENCES, [], "references.csv", "d.png"),
    ("duplicate", PREDICTIONS + "a.png,cat,0.8,0.2\n", REFERENCES, [], "predictions.csv", "twice"),
    ("unknown reference class", PREDICTIONS, REFERENCES.replace("c.png,dog", "c.png,bird"), [], "references.csv",
     "bird"),
    ("unknown predicted class", PREDICTIONS.replace("b.png,dog", "b.png,cow"), REFERENCES, [], "predictions.csv",
     "cow"),
    ("sum not 1", PREDICTIONS.replace("0.3,0.7", "0.3,0.6"), REFERENCES, [], "predictions.csv", "sum to 0.9"),
    ("not a number", PREDICTIONS.replace("0.3,0.7", "0.3,high"), REFERENCES, [], "predictions.csv", "high"),
    ("no p_ columns", "input,label\na.png,cat\n", REFERENCES, [], "predictions.csv", "p_<class>"),
    ("no group column", PREDICTIONS, REFERENCES, ["--group", "scanner"], "references.csv", "scanner"),
    ("empty group", PREDICTIONS, REFERENCES.replace("c.png,dog,y", "c.png,dog,"), ["--group", "site"],
     "references.csv", "line 4"),
    ("unknown positive", PREDICTIONS, REFERENCES, ["--positive", "bird"], "predictions.csv", "bird"),
])
def test_bad_input_is_one_line_naming_the_file_and_writes_nothing(tmp_path, capsys, problem, predictions, references,
                                                                   extra, culprit, words):
    (tmp_path / "predictions.csv").write_text(predictions)
    (tmp_path / "references.csv").write_text(references)
    out = tmp_path / "out"
    argv = ["evaluate", str(tmp_path / "predictions.csv"), str(tmp_path / "references.csv"), "-o", str(out), *extra]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medai: error:") and culprit in err[0] and words in err[0], err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv", "references.csv"]


def test_sigmoid_scores_need_not_sum_to_one_and_existing_folder_keeps_other_files(tmp_path):
    (tmp_path / "predictions.csv").write_text(PREDICTIONS.replace("0.3,0.7", "0.3,0.6"))
    (tmp_path / "references.csv").write_text(REFERENCES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["evaluate", str(tmp_path / "predictions.csv"), str(tmp_path / "references.csv"), "-o", str(out)]
    assert main(argv + ["--scores", "sigmoid"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "metrics.csv", "metrics.json", "notes.txt",
                                                    "roc.png"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["overall"]["confusion_matrix"] == [[1, 1], [0, 1]] and report["scores"] == "sigmoid"
