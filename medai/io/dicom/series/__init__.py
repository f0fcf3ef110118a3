"""DICOM image series: :func:`read_dicom` (a folder or one file -> Volume) and :func:`write_dicom_series`."""

from medai.io.dicom.series.read import read_dicom
from medai.io.dicom.series.write import write_dicom_series

__all__ = ["read_dicom", "write_dicom_series"]
