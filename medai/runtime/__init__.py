"""Runtimes that execute a model's weights (TorchScript today)."""
