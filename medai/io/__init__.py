"""Reading and writing images as :class:`medai.Volume`, chosen by path.

``read_volume(path)`` takes a NIfTI/NRRD/MHA/MHD file, a DICOM series folder, a single DICOM file or a
PNG; ``write_volume(volume, path)`` writes by the file's extension. Every problem a user can cause is a
:class:`medai.MedAIError` naming the file; nothing is written when writing fails.
"""

from medai.io.dispatch import read_volume, write_volume, image_kind

__all__ = ["read_volume", "write_volume", "image_kind"]
