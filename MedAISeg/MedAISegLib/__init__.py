"""Helpers of the MedAI Slicer modules (MedAISeg and MedAIClassify use them both).

They import slicer, qt and vtk only; the engine (``medai``) is imported inside the functions that use it.
"""
