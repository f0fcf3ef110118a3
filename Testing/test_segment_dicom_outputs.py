"""``medai segment`` on a real DICOM series with every derived output: SEG, RTSTRUCT, meshes, de-identified set."""

import subprocess
import sys

import numpy as np
import pydicom
import pytest

from medai.io import read_volume
from medai.io.dicom.seg import read_dicom_seg
from medai.io.dicom.series.write import write_dicom_series
from medai.io.dicom.rtstruct import read_rtstruct
from medai.io.seg_nrrd import read_seg_nrrd
from medai.metrics import dice
from medai.resample import resample_to_grid

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "ID12345", "PatientBirthDate": "19700101"}


def medai(*args):
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory, itk_t1):
    """The real ITK T1 as an MR series with shuffled file names and descending instance numbers, segmented once.

    (Flipped and oblique series are covered by the SEG/RTSTRUCT tests; a geometry relabelled as flipped would
    mirror the head itself, which is not what a scanner produces.)"""
    root = tmp_path_factory.mktemp("dicom_outputs")
    series = root / "series"
    write_dicom_series(itk_t1, series, modality="MR", patient=PATIENT,
                       shuffle_names=True, descending_instance_numbers=True)
    out = root / "out"
    out.mkdir()
    result = medai("segment", series, "-o", out / "brain.seg.nrrd", "--dicom-seg", out / "brain_seg.dcm",
                   "--rtstruct", out / "brain_rt.dcm", "--mesh", out / "mesh", "--deidentify", out / "deid",
                   "--device", "cpu", "--progress", "none")
    assert result.returncode == 0, result.stderr
    return series, out


def test_seg_and_rtstruct_read_back_equal_to_the_label_map(run, itk_t1_brain_mask):
    series, out = run
    label_map, labels = read_seg_nrrd(out / "brain.seg.nrrd")
    source = read_volume(series)
    assert label_map.same_grid(source, tol=1e-4)
    # accuracy in physical space against the reference skull strip (resampled onto the series grid)
    reference = resample_to_grid(itk_t1_brain_mask, source, "nearest")
    assert dice(label_map.array > 0, reference.array > 0) >= 0.95
    seg_map, seg_labels = read_dicom_seg(out / "brain_seg.dcm", series)
    np.testing.assert_array_equal(seg_map.array > 0, label_map.array > 0)
    assert [lb.name for lb in seg_labels] == ["Brain"]
    assert seg_labels[0].terminology.type.value == "12738006"
    rt_map, rt_labels = read_rtstruct(out / "brain_rt.dcm", series)
    np.testing.assert_array_equal(rt_map.array > 0, label_map.array > 0)
    assert [lb.name for lb in rt_labels] == ["Brain"]
    seg = pydicom.dcmread(out / "brain_seg.dcm")
    assert seg.PatientName == "Doe^Jane"
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "Brain extraction (deepbet)"


def test_mesh_and_deidentified_set(run):
    series, out = run
    assert [p.name for p in (out / "mesh").iterdir()] == ["Brain.stl"]
    files = [p for p in (out / "deid").rglob("*") if p.is_file()]
    assert len(files) == len(list(series.iterdir())) + 2  # every image, the SEG and the RTSTRUCT
    for path in files:
        data = path.read_bytes()
        for secret in (b"Doe^Jane", b"ID12345", b"19700101"):
            assert secret not in data, (path, secret)
    datasets = [pydicom.dcmread(p) for p in files]
    images = {ds.SOPInstanceUID for ds in datasets if ds.Modality == "MR"}
    seg = next(ds for ds in datasets if ds.Modality == "SEG")
    referenced = {item.ReferencedSOPInstanceUID for frame in seg.PerFrameFunctionalGroupsSequence
                  for item in frame.DerivationImageSequence[0].SourceImageSequence}
    assert referenced and referenced <= images


def test_dicom_outputs_need_a_dicom_input_and_leave_nothing(tmp_path):
    from conftest import ITK_T1

    out = tmp_path / "out"
    out.mkdir()
    result = medai("segment", ITK_T1, "-o", out / "brain.seg.nrrd", "--dicom-seg", out / "seg.dcm")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"medai: error: {ITK_T1}: --dicom-seg need a DICOM series as input"]
    assert list(out.iterdir()) == []


def test_medai_deidentify_command(run, tmp_path):
    series, out = run
    result = medai("deidentify", series, out / "brain_seg.dcm", "-o", tmp_path / "deid")
    assert result.returncode == 0, result.stderr
    files = [p for p in (tmp_path / "deid").rglob("*") if p.is_file()]
    assert len(files) == len(list(series.iterdir())) + 1
    assert not any(b"Doe^Jane" in p.read_bytes() for p in files)
    again = medai("deidentify", series, "-o", tmp_path / "deid")  # not empty: refused, nothing touched
    assert again.returncode == 1 and len(again.stderr.splitlines()) == 1
