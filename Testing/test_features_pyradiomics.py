"""medai.features against pyradiomics' own feature values for its five real cases (data/baseline/*.csv).

Every baseline column states the settings pyradiomics used (diagnostics_Configuration_Settings); they are read
and honoured here, and settings medai does not implement must be at their no-op value for the column to count.
Columns compared: the five plain cases (first-order, shape, GLCM: binWidth 25, voxelArrayShift 2000, label 1,
distance 1, no resampling) and the five fixed-bin-count GLCM columns (<case>_FBN, binCount 64).

Tolerances (relative), what the values allow:
- first-order and GLCM 1e-12: the baseline stores full doubles; measured worst about 5e-15.
- shape 1e-10: the baseline stores mesh-based values rounded to 12 significant digits; measured worst 3.7e-12.
- brain1's MeshVolume, SurfaceArea and the two ratios built on them are the exception: the shape baseline was
  written by a development build (2.0.1b1.post11) and pyradiomics 3.0.1 itself no longer gives those values.
  Running pyradiomics 3.0.1 (built from its source archive in a scratch venv, same settings) on brain1 gives
  MeshVolume 16147.51180013021 mm³ and SurfaceArea 6438.821603779402 mm² (the baseline says 16149.4954427 and
  6433.7343171, 1.2e-4 and 7.9e-4 away). These four values are checked against pyradiomics 3.0.1 to 1e-10 and
  against the stale baseline to 1e-3 (pyradiomics' own test accepts 3 % for every feature).
"""

from __future__ import annotations

import ast
import csv
from functools import lru_cache

import numpy as np
import pytest

from conftest import PYRADIOMICS_DATA
from medai.features import FEATURE_NAMES, FeatureSettings, extract_features
from medai.io import read_volume

CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")
TOLERANCE = {"firstorder": 1e-12, "glcm": 1e-12, "shape": 1e-10}
#: pyradiomics 3.0.1's own brain1 mesh values (see the module docstring), where its 2018 baseline is stale.
PYRADIOMICS_301_BRAIN1 = {"MeshVolume": 16147.51180013021, "SurfaceArea": 6438.821603779402}
STALE_BASELINE_TOLERANCE = 1e-3
#: pyradiomics settings medai.features does not implement, with the value that makes them a no-op.
NO_OP_SETTINGS = {"resampledPixelSpacing": None, "normalize": False, "resegmentRange": None, "force2D": False,
                  "weightingNorm": None, "removeOutliers": None, "preCrop": False}
#: pyradiomics settings that do not change a feature's value (bookkeeping, checks, or no effect without resampling).
IGNORED_SETTINGS = {"additionalInfo", "interpolator", "padDistance", "minimumROIDimensions", "minimumROISize",
                    "normalizeScale", "force2Ddimension", "gldm_a"}


@lru_cache(maxsize=None)
def baseline(feature_class: str) -> dict[str, dict[str, str]]:
    """{column: {row name: value}} of one baseline CSV."""
    with open(PYRADIOMICS_DATA / "baseline" / f"baseline_{feature_class}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    return {column: {row[0]: row[index] for row in rows[1:]} for index, column in enumerate(header) if index}


def settings_of(column: dict[str, str]) -> FeatureSettings:
    """The column's pyradiomics settings as FeatureSettings; fails if it asks for something not implemented."""
    settings = ast.literal_eval(column["diagnostics_Configuration_Settings"])
    for key, no_op in NO_OP_SETTINGS.items():
        assert settings.get(key, no_op) == no_op, f"baseline uses {key}={settings[key]}, not implemented"
    assert ast.literal_eval(column["diagnostics_Configuration_EnabledImageTypes"]) == {"Original": {}}
    wanted = {key: value for key, value in settings.items() if key not in NO_OP_SETTINGS and key not in IGNORED_SETTINGS}
    return FeatureSettings.from_dict(wanted)


@lru_cache(maxsize=None)
def features(case: str, settings: FeatureSettings) -> dict[str, float]:
    image = read_volume(PYRADIOMICS_DATA / f"{case}_image.nrrd")
    mask = read_volume(PYRADIOMICS_DATA / f"{case}_label.nrrd")
    return extract_features(image, mask, settings)


def relative_error(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference) if reference else abs(value)


def compare(feature_class: str, column_name: str, case: str) -> dict[str, float]:
    """Relative error of every implemented feature of ``feature_class`` against one baseline column."""
    column = baseline(feature_class)[column_name]
    settings = settings_of(column)
    assert settings.label == 1
    values = features(case, settings)
    names = [name for name in FEATURE_NAMES if name.split("_")[1] == feature_class]
    assert names and all(name in column for name in names), "a feature is missing from the baseline"
    errors = {}
    for name in names:
        short = name.split("_", 2)[2]
        reference = float(column[name])
        if case == "brain1" and feature_class == "shape" and short in ("MeshVolume", "SurfaceArea",
                                                                       "SurfaceVolumeRatio", "Sphericity"):
            assert relative_error(values[name], reference) < STALE_BASELINE_TOLERANCE, name
            reference = brain1_pyradiomics_301(short)
        errors[name] = relative_error(values[name], reference)
    return errors


def brain1_pyradiomics_301(short: str) -> float:
    volume, area = PYRADIOMICS_301_BRAIN1["MeshVolume"], PYRADIOMICS_301_BRAIN1["SurfaceArea"]
    return {"MeshVolume": volume, "SurfaceArea": area, "SurfaceVolumeRatio": area / volume,
            "Sphericity": (36 * np.pi * volume ** 2) ** (1 / 3) / area}[short]


@pytest.mark.parametrize("feature_class", ["firstorder", "shape", "glcm"])
@pytest.mark.parametrize("case", CASES)
def test_every_feature_matches_pyradiomics(case, feature_class):
    errors = compare(feature_class, case, case)
    counts = {"firstorder": 18, "shape": 14, "glcm": 24}
    assert len(errors) == counts[feature_class]
    worst = max(errors, key=errors.get)
    print(f"{case} {feature_class}: worst relative error {errors[worst]:.2e} ({worst})")
    assert errors[worst] < TOLERANCE[feature_class], f"{worst}: relative error {errors[worst]:.3e}"


@pytest.mark.parametrize("case", CASES)
def test_glcm_with_fixed_bin_count_matches_pyradiomics(case):
    errors = compare("glcm", f"{case}_FBN", case)
    assert baseline("glcm")[f"{case}_FBN"]["diagnostics_Configuration_Settings"].count("'binCount': 64") == 1
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE["glcm"], f"{worst}: relative error {errors[worst]:.3e}"


def test_mask_off_the_image_grid_is_a_one_line_error():
    from medai.errors import MedAIError

    image = read_volume(PYRADIOMICS_DATA / "breast1_image.nrrd")
    mask = read_volume(PYRADIOMICS_DATA / "breast1_label.nrrd")
    moved = type(mask)(mask.array, mask.spacing, mask.origin + [0.5, 0, 0], mask.direction)
    with pytest.raises(MedAIError, match="not on the image's grid") as error:
        extract_features(image, moved)
    assert "\n" not in str(error.value)
    with pytest.raises(MedAIError, match="no voxel with label 2"):
        extract_features(image, mask, FeatureSettings(label=2))
