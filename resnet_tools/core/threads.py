"""Pinning a process's math libraries to a number of threads (set before any framework is imported)."""

from __future__ import annotations


def threads_env(threads: int) -> dict[str, str]:
    """The environment that pins every math library to ``threads`` threads (set before any framework loads):
    OpenMP (torch, oneDNN), MKL, OpenBLAS, TensorFlow's intra-op pool, paddle's ``CPU_NUM``."""
    pinned = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "CPU_NUM")
    return {**dict.fromkeys(pinned, str(threads)), "TF_NUM_INTEROP_THREADS": "1"}
