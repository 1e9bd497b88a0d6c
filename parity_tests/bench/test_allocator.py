"""``resnet_tools.bench.allocator``: "kept" stops the page faults of re-allocating large blocks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resnet_tools.bench.allocator import set_malloc

PROBE = """
import resource, sys
import numpy as np
from resnet_tools.bench.allocator import set_malloc
applied = set_malloc(sys.argv[1])
np.ones(16 << 20, np.float32)  # first touch of 64 MiB in either mode
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    np.ones(16 << 20, np.float32)  # 64 MiB: over glibc's mmap threshold
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    applied, faults = out.split()
    return applied == "True", int(faults)


def test_kept_memory_is_not_faulted_in_again() -> None:
    applied, kept = _faults("kept")
    if not applied:
        pytest.skip("not glibc: mallopt is not available")
    _, default = _faults("glibc")
    assert default >= 10 * 32  # each 64 MiB block faulted in anew: >= 32 faults even with 2 MiB huge pages
    assert kept < default / 10


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="malloc mode must be one of"):
        set_malloc("jemalloc")
