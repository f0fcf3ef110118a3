"""Choosing the compute device and thread count."""

from __future__ import annotations

import os

from medai.errors import MedAIError


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a CUDA GPU is usable, else 'cpu'. 'cuda' without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MedAIError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise MedAIError(f"unknown device '{device}'; use auto, cpu or cuda")
    return device


def configure_threads() -> int:
    """Use every core the process may run on (respecting affinity masks and OMP_NUM_THREADS)."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores))
    return cores


def tune_allocator_for_inference() -> bool:
    """Keep freed memory in the process (glibc only) so a network's large activations reuse mapped pages.

    By default glibc serves each large block with a fresh mmap and returns it on free, so every layer of a 3D
    CNN page-faults its activations in again. With mmap disabled and a 1 GiB trim threshold, the pages are
    reused. Meant for a process that runs inference and exits (the CLI); it raises the resident memory it keeps.
    Returns False where the allocator is not glibc's.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))
