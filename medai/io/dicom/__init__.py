"""DICOM: image series in and out, the objects derived from a series (SEG, RTSTRUCT), and de-identification.

Where each thing lives, one entry point per job:

* reading a series folder or file into a Volume: :func:`medai.io.dicom.series.read_dicom`
  (``series/``: ``scan`` finds the files of a series, ``planes`` reads each frame's plane, ``stack`` orders the
  planes into a grid, ``pixels`` decodes and rescales, ``read`` puts them together);
* writing a Volume as a CT/MR series: :func:`medai.io.dicom.series.write_dicom_series` (``series/write``,
  ``series/encode``);
* DICOM SEG: :func:`medai.io.dicom.seg.write_dicom_seg` and :func:`medai.io.dicom.seg.read_dicom_seg`;
* RTSTRUCT: :func:`medai.io.dicom.rtstruct.write_rtstruct` and :func:`medai.io.dicom.rtstruct.read_rtstruct`
  (``rtstruct/``: ``contours`` is the pixel-edge polygon convention, ``write`` and ``read`` the two directions);
* what SEG and RTSTRUCT share (the source series, segments to write, patient/study copies): ``derived``;
* de-identification of a set of files: :func:`medai.io.dicom.deidentify.deidentify_files`.
"""
