"""MedAISeg's input check asks the built-in image-type model what the image is: a CT given to an MR model (deepbet's
brain extraction) gets a warning in the segmentation result; real MR images do not. A warning, never a failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import PYRADIOMICS_DATA, crop
from medai.io import read_volume
from medai.models import get_card
from medai.pipeline.checks import check_input
from medai.pipeline.modality_check import image_type_check

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "recipes" / "image_type"))
from sources import by_name  # noqa: E402


@pytest.fixture(scope="module")
def brain_extraction():
    return get_card("brain-extraction")


def image_type_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "image-type model" in w]


@pytest.mark.parametrize("name", ["lung1", "cranium"], ids=["chest-ct", "head-ct"])
def test_a_ct_given_to_an_mri_model_warns(brain_extraction, name):
    warnings = image_type_warnings(image_type_check()(by_name(name).load(), brain_extraction))
    assert len(warnings) == 1
    assert "judges this image to be CT" in warnings[0] and "'brain-extraction' expects MR" in warnings[0]


def test_real_t1_images_do_not_warn(brain_extraction, itk_t1, colin27):
    for volume in (itk_t1, colin27, read_volume(PYRADIOMICS_DATA / "brain1_image.nrrd")):
        assert check_input(volume, brain_extraction) + image_type_check()(volume, brain_extraction) == []


def test_the_segmenter_reports_it_in_its_result(brain_extraction, pyradiomics_lung):
    """End to end through Segmenter on a small real chest CT block (the warning comes from its input check)."""
    from medai.pipeline import Segmenter

    image, _ = pyradiomics_lung["lung2"]
    block = crop(image, (20, 100, 100), (24, 160, 160))
    result = Segmenter(brain_extraction, device="cpu", modality_check=image_type_check())(block)
    assert len(image_type_warnings(result.warnings)) == 1


def test_models_of_any_modality_and_the_image_type_model_itself_are_not_checked(itk_t1):
    assert image_type_check()(itk_t1, get_card("image-type")) == []
