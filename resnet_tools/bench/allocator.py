"""glibc malloc tuning for CPU inference: keep freed memory in the process.

By default glibc serves every block over its mmap threshold (at most 32 MiB) with a fresh mmap and
unmaps it on free. A resnet50 activation at batch 16 is up to 51 MiB, so each op's output costs
page faults and kernel zero-filling on every forward: in eager torch that is ~1/3 of the time
at batch 16 (docs/generated/profile.md). Serving them from the heap and not trimming it keeps the
pages mapped (RSS stays at its high-water mark, as with jemalloc or tcmalloc).

Outside Python, the same setting for any process:
``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEPT = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 1 << 30}  # never mmap; trim the heap top only past 1 GiB free
GLIBC_DEFAULT = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}
MODES = ("kept", "glibc")


def set_malloc(mode: str) -> bool:
    """Apply ``"kept"`` (freed memory stays mapped) or ``"glibc"`` (glibc's defaults) to this process.

    Returns False where there is no glibc (macOS, musl, Windows): nothing was changed.
    """
    if mode not in MODES:
        raise ValueError(f"malloc mode must be one of {MODES}, got {mode!r}")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = KEPT if mode == "kept" else GLIBC_DEFAULT
    return all(libc.mallopt(param, value) == 1 for param, value in settings.items())
