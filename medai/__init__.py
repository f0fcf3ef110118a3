"""MedAI engine: medical image I/O with exact geometry, model cards, pipelines and the ``medai`` CLI.

Importing ``medai`` never imports torch, monai, slicer or Qt; those load inside the functions that need them.
"""

from medai.errors import MedAIError
from medai.volume import Volume

__all__ = ["MedAIError", "Volume", "__version__"]
__version__ = "0.1.0"
