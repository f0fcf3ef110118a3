"""``medai train``: MONAI networks trained on a datalist or folder, written as model packages.

Modules: datalist (what to train on), preprocess (network input, identical to inference), networks (MONAI
network specs), loop (epochs, checkpoints, resume, log), session (work folder), segmentation / classification
(the two trainers), package (card + TorchScript + ONNX, atomically). Importing this package imports no torch.
"""
