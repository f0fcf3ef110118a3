"""``medai segment`` as a user runs it: real child processes, the real model on the real ITK T1 (128x128x62).

Outputs by extension and what other readers make of them, JSON progress, a batch that carries on past a bad
case, and the one-line error rule for bad input (small inputs: those errors come before any inference).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ITK_T1, truncate
from medai import Volume
from medai.io import read_volume, write_volume
from medai.metrics import dice


def medai(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def json_events(stdout: str) -> list[dict]:
    """Every line of ``stdout`` parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in stdout.splitlines()]


FORMATS = (".seg.nrrd", ".nii.gz", ".nrrd")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """One real run per output format, each with JSON progress."""
    out = tmp_path_factory.mktemp("segment")
    runs = {}
    for ext in FORMATS:
        target = out / f"brain{ext}"
        runs[ext] = (target, medai("segment", ITK_T1, "-o", target, "--progress", "json"))
    return runs


@pytest.mark.parametrize("ext", FORMATS)
def test_writes_the_format_its_name_asks_for(written, ext, itk_t1, itk_t1_brain_mask):
    target, run = written[ext]
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    head = target.read_bytes()[:8]
    if ext == ".nii.gz":
        assert head[:2] == b"\x1f\x8b"
        with gzip.open(target) as f:
            assert f.read(348)[344:348] == b"n+1\0"  # single-file NIfTI-1
    else:
        assert head.startswith(b"NRRD000")
    result = read_volume(target)
    assert result.same_grid(itk_t1, tol=1e-4)  # NIfTI stores float32 geometry
    assert dice(result.array > 0, itk_t1_brain_mask.array > 0) >= 0.95


def test_seg_nrrd_reads_back_with_slicerio_and_simpleitk(written, itk_t1):
    import SimpleITK as sitk
    import slicerio

    target, run = written[".seg.nrrd"]
    assert run.returncode == 0, run.stderr
    segmentation = slicerio.read_segmentation(str(target))
    (segment,) = segmentation["segments"]
    assert segment["name"] == "Brain" and segment["labelValue"] == 1
    np.testing.assert_allclose(segment["color"], [0xfa / 255, 0xfa / 255, 0xe1 / 255], atol=1e-5)
    assert segment["terminology"]["category"] == ["SCT", "123037004", "Anatomical Structure"]
    assert segment["terminology"]["type"] == ["SCT", "12738006", "Brain"]
    np.testing.assert_allclose(segmentation["ijkToLPS"], itk_t1.index_to_lps_matrix(), atol=1e-9)

    image, source = sitk.ReadImage(str(target)), sitk.ReadImage(str(ITK_T1))
    assert "SCT^12738006^Brain" in image.GetMetaData("Segment0_Tags")
    assert image.GetSize() == source.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), source.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), source.GetDirection(), atol=1e-6)
    labels = sitk.GetArrayFromImage(image)
    assert set(np.unique(labels)) == {0, 1}
    np.testing.assert_array_equal(labels, read_volume(written[".nii.gz"][0]).array)


def test_progress_json_lines_end_with_a_summary(written):
    target, run = written[".nii.gz"]
    events = json_events(run.stdout)
    assert events[0] == {"event": "start", "cases": 1}
    assert events[-1]["event"] == "summary"
    assert (events[-1]["ok"], events[-1]["failed"], events[-1]["failures"]) == (1, 0, [])
    (done,) = [e for e in events if e["event"] == "case_done"]
    assert done["output"] == str(target) and done["timings"]["total"] > 0
    progress = [e for e in events if e["event"] == "progress"]
    assert {"read", "localise", "segment", "postprocess", "write"} <= {e["stage"] for e in progress}
    overall = [e["overall"] for e in progress]
    assert overall == sorted(overall) and all(0 <= f <= 1 for f in overall)


def test_a_batch_carries_on_past_a_bad_case(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    first, bad, last = inputs / "first.nii.gz", inputs / "broken.nii.gz", inputs / "last.nii.gz"
    shutil.copy(ITK_T1, first)
    shutil.copy(ITK_T1, last)
    bad.write_text("not an image\n")
    out = tmp_path / "out"
    run = medai("segment", first, bad, last, "-o", out, "--format", ".nii.gz", "--progress", "json")
    assert run.returncode != 0
    assert "Traceback" not in run.stdout + run.stderr
    summary = json_events(run.stdout)[-1]
    assert (summary["event"], summary["ok"], summary["failed"]) == ("summary", 2, 1)
    (failure,) = summary["failures"]
    assert failure["case"] == str(bad) and failure["error"].startswith(f"{bad}: ")
    assert sorted(p.name for p in out.iterdir()) == ["first.nii.gz", "last.nii.gz"]


def test_an_existing_output_is_kept_unless_overwrite(tmp_path):
    target = tmp_path / "brain.nii.gz"
    target.write_bytes(b"earlier result")
    run = medai("segment", ITK_T1, "-o", target)
    assert run.returncode != 0
    assert run.stderr.splitlines() == [f"medai: error: {target}: already exists; use --overwrite to replace it"]
    assert target.read_bytes() == b"earlier result"
    run = medai("segment", ITK_T1, "-o", target, "--overwrite", "--progress", "none")
    assert run.returncode == 0, run.stderr
    assert read_volume(target).array.sum() > 50_000


# --- bad input: one stderr line naming the file and the problem, non-zero exit, nothing written -------------

def truncated_nifti(tmp_path: Path) -> Path:
    return truncate(Path(shutil.copy(ITK_T1, tmp_path / "scan.nii.gz")))


def text_named_like_an_image(tmp_path: Path) -> Path:
    (tmp_path / "notes.nii.gz").write_text("Patient was scanned twice; use the second scan.\n")
    return tmp_path / "notes.nii.gz"


def empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "study").mkdir()
    return tmp_path / "study"


def missing_path(tmp_path: Path) -> Path:
    return tmp_path / "nowhere" / "scan.nii.gz"


def all_nan(extension: str):
    def make(tmp_path: Path) -> Path:
        return write_volume(Volume(np.full((20, 24, 28), np.nan, np.float32), [1, 1, 1]), tmp_path / f"nan{extension}")
    make.__name__ = f"all_nan{extension.replace('.', '_')}"
    return make


def png_photo(tmp_path: Path) -> Path:
    Image.fromarray(read_volume(ITK_T1).array[30].astype(np.uint8)).save(tmp_path / "slice.png")
    return tmp_path / "slice.png"


def one_slice_nifti(tmp_path: Path) -> Path:
    image = read_volume(ITK_T1)
    return write_volume(Volume(image.array[30:31], image.spacing, image.origin, image.direction), tmp_path / "one.nii.gz")


#: (make the bad input, words of the problem)
BAD_INPUTS = [
    (truncated_nifti, "is truncated"),
    (text_named_like_an_image, "is not a NIfTI file"),
    (empty_folder, "is an empty folder"),
    (missing_path, "no such file or folder"),
    (all_nan(".nii.gz"), "has no finite voxel values"),  # ITK's NIfTI reader zeroes NaN; medai.io restores them
    (all_nan(".nrrd"), "has no finite voxel values"),
    (png_photo, "is a 2D image"),
    (one_slice_nifti, "is a 2D image"),
]


@pytest.mark.parametrize("make, problem", BAD_INPUTS, ids=[make.__name__ for make, _ in BAD_INPUTS])
@pytest.mark.parametrize("output", ["brain.seg.nrrd", "results"])
def test_bad_input_gives_one_line_and_no_output(tmp_path, make, problem, output):
    bad = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(tmp_path.rglob("*"))
    run = medai("segment", bad, "-o", out / output)
    assert run.returncode != 0
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"medai: error: {bad}: {problem}"), lines[0]
    assert sorted(tmp_path.rglob("*")) == before  # no output file, no folder, no leftovers
