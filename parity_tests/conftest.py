"""Shared fixtures. Backends load through resnet_tools.core.backends (paddle before TensorFlow)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from resnet_tools.core.backends import BACKENDS, installed_backends, load_backends

INSTALLED = installed_backends()
# Load every installed backend once, in the one safe order, before any test module imports one.
LOADED: dict[str, ModuleType] = load_backends(INSTALLED)


def backend_params() -> list:
    """pytest params over the three backends; a backend not installed is skipped, not failed."""
    return [
        pytest.param(b, id=b, marks=() if b in LOADED else pytest.mark.skip(reason=f"{b} not installed"))
        for b in BACKENDS
    ]


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> ModuleType:
    """One backend package (resnet_torch / resnet_paddle / resnet_keras)."""
    return LOADED[request.param]


def get_backend(name: str) -> ModuleType:
    if name not in LOADED:
        pytest.skip(f"{name} not installed")
    return LOADED[name]


#: Tests that hold every framework's model of a 50-layer-or-deeper network at once (4 to 11 GB each, measured): one
#: xdist worker runs them all, one after another (``--dist loadgroup`` in pyproject's addopts), so two never meet in
#: CI's 24 GiB (two did, and the kernel killed a worker, in three full runs).
ALL_FRAMEWORKS_AT_ONCE = pytest.mark.xdist_group("all-frameworks-at-once")


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


@pytest.fixture(autouse=True)
def _give_freed_memory_back() -> Iterator[None]:
    """After each test, hand the memory glibc keeps from freed tensors back to the system: a worker that ran four
    frameworks' big models otherwise holds their peak (measured: 2.6 GB kept after resnext101 and wide_resnet101 in
    Flax, 0.35 GB after a trim), and two such workers ran out of CI's 24 GiB."""
    yield
    if _TRIM is not None:
        _TRIM(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
