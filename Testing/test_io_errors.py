"""The one-line error rule, through the real command line.

Each bad input makes ``medai convert`` exit non-zero with exactly one line on stderr that names the file or
folder and the problem, no traceback, and no output file (nor any staging leftovers); ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import truncate
from medai import MedAIError, Volume
from medai.io import read_volume, write_volume
from medai.io.dicom.series.write import write_dicom_series


def medai(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *args], capture_output=True, text=True, timeout=120)


def two_series(tmp_path: Path, image: Volume) -> Path:
    (tmp_path / "in").mkdir()
    write_dicom_series(image, tmp_path / "in" / "a")
    write_dicom_series(image, tmp_path / "in" / "b")
    return tmp_path / "in"


def missing_slice(tmp_path: Path, image: Volume) -> Path:
    write_dicom_series(image, tmp_path / "in", shuffle_names=True)[12].unlink()
    return tmp_path / "in"


def truncated_slice(tmp_path: Path, image: Volume) -> Path:
    return truncate(write_dicom_series(image, tmp_path / "in")[5])


def text_named_nii_gz(tmp_path: Path, image: Volume) -> Path:
    (tmp_path / "in.nii.gz").write_text("this is not an image\n")
    return tmp_path / "in.nii.gz"


def missing_path(tmp_path: Path, image: Volume) -> Path:
    return tmp_path / "nowhere" / "scan.nii.gz"


def empty_folder(tmp_path: Path, image: Volume) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path / "in"


def folder_without_dicom(tmp_path: Path, image: Volume) -> Path:
    (tmp_path / "in").mkdir()
    Image.fromarray(image.array[10]).save(tmp_path / "in" / "slice.jpg")
    (tmp_path / "in" / "notes.txt").write_text("no DICOM here\n")
    return tmp_path / "in"


def truncated_file(extension: str):
    def make(tmp_path: Path, image: Volume) -> Path:
        return truncate(write_volume(image, tmp_path / f"in{extension}"))
    make.__name__ = f"truncated{extension.replace('.', '_')}"
    return make


#: (make the bad input, the file or folder the message must name, words of the problem)
CASES = [
    (two_series, "in", "holds 2 DICOM series"),
    (missing_slice, "in", "is missing slices"),
    (truncated_slice, "in/IM00006.dcm", "is truncated"),
    (text_named_nii_gz, "in.nii.gz", "is not a NIfTI file"),
    (missing_path, "nowhere/scan.nii.gz", "no such file or folder"),
    (empty_folder, "in", "is an empty folder"),
    (folder_without_dicom, "in", "holds no DICOM images"),
    (truncated_file(".nii.gz"), "in.nii.gz", "is truncated"),
    (truncated_file(".nii"), "in.nii", "is truncated"),
    (truncated_file(".nrrd"), "in.nrrd", "is truncated"),
    (truncated_file(".mha"), "in.mha", "is truncated"),  # ITK prints the reason on stderr itself
]


@pytest.mark.parametrize("make, named, problem", CASES, ids=[case[0].__name__ for case in CASES])
def test_bad_input_gives_one_line_and_no_output(colin27_crop, tmp_path, make, named, problem):
    source = make(tmp_path, colin27_crop)
    out = tmp_path / "out" / "result.nii.gz"
    out.parent.mkdir()
    run = medai("convert", str(source), str(out))
    assert run.returncode == 1, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"medai: error: {tmp_path / named}: {problem}"), lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert list(out.parent.iterdir()) == []


def test_debug_shows_the_traceback(colin27_crop, tmp_path):
    source = truncated_slice(tmp_path, colin27_crop)
    run = medai("--debug", "convert", str(source.parent), str(tmp_path / "out.nrrd"))
    assert run.returncode != 0
    assert "Traceback" in run.stderr and "is truncated" in run.stderr
    assert not (tmp_path / "out.nrrd").exists()


@pytest.mark.parametrize("output, problem", [
    ("out.png", "cannot write this format"),
    ("out.seg.nrrd", "is a segmentation file name"),
    ("missing/out.nii.gz", "the folder to write into does not exist"),
])
def test_bad_output_gives_one_line_and_writes_nothing(tmp_path, output, problem):
    before = sorted(tmp_path.iterdir())
    run = medai("convert", str(Path("/usr/share/mricron/templates/ch2.nii.gz")), str(tmp_path / output))
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert problem in run.stderr and "Traceback" not in run.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_convert_dicom_series_and_png_then_info(colin27_crop, tmp_path):
    """The good path through the same CLI: a DICOM folder and a PNG become NIfTI with the same voxels."""
    write_dicom_series(colin27_crop, tmp_path / "series", shuffle_names=True)
    run = medai("convert", str(tmp_path / "series"), str(tmp_path / "series.nii.gz"))
    assert run.returncode == 0 and run.stderr == "", run.stderr
    np.testing.assert_array_equal(read_volume(tmp_path / "series.nii.gz").array, colin27_crop.array)
    Image.fromarray(colin27_crop.array[4]).save(tmp_path / "slice.png")
    run = medai("convert", str(tmp_path / "slice.png"), str(tmp_path / "slice.nrrd"))
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(read_volume(tmp_path / "slice.nrrd").array, colin27_crop.array[4:5])
    run = medai("info", str(tmp_path / "series"))
    assert run.returncode == 0 and '"Modality": "CT"' in run.stdout and '"size_ijk": [' in run.stdout


def test_failed_write_leaves_no_partial_file(colin27_crop, tmp_path):
    """Voxels SimpleITK cannot store: the error names the file and nothing is left in the folder."""
    strange = colin27_crop.with_array(colin27_crop.array.astype(object))
    for name in ("out.mha", "out.mhd", "out.nii.gz"):
        with pytest.raises(MedAIError, match=f"{name}: could not write"):
            write_volume(strange, tmp_path / name)
    assert list(tmp_path.iterdir()) == []
