"""Image features of a segment (pyradiomics-compatible first-order, 3D shape and GLCM) for radiomics and
the classic feature classifier."""

from medai.features.extract import FEATURE_NAMES, extract_features
from medai.features.settings import FeatureSettings

__all__ = ["FEATURE_NAMES", "FeatureSettings", "extract_features"]
