"""Shared fixtures. Backends load through resnet_tools.core.backends (paddle before TensorFlow)."""

from __future__ import annotations

import ctypes
import fcntl
import gc
import os
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from resnet_spec import list_models
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


#: Tests that hold every framework's model of a 50-layer-or-deeper network at once, or start several processes that
#: each load every framework (4 to 11 GB each, measured): they run one at a time across xdist workers, so two never
#: meet in CI's 24 GiB (two did, and the kernel killed a worker, in four full runs). The fixture below takes a lock
#: file shared by the workers; xdist's own ``xdist_group`` cannot do it here, since pytest 9.2 drops the nodeid suffix
#: that ``--dist loadgroup`` groups by (pytest-xdist issue 1386: the groups were silently ignored).
ALL_FRAMEWORKS_AT_ONCE = pytest.mark.all_frameworks_at_once

#: One model of each kind (basic; v1.5, v1 and pre-activation bottleneck; grouped; wide): what ``make test`` runs
#: where a test would otherwise take the whole zoo. The zoo's others are deeper or wider copies of these; they are
#: marked ``slow`` and run in ``make test-all`` (and ``make docs-data`` runs the whole zoo through ``resnet parity``).
SAMPLE = ("resnet18", "resnet50", "resnet50v1", "resnet50v2", "resnext50_32x4d", "wide_resnet50_2")


def zoo_params(names: Iterable[str] | None = None) -> list:
    """pytest params over ``names`` (default: the whole zoo), those outside SAMPLE marked ``slow``."""
    return [
        pytest.param(name, id=name, marks=() if name in SAMPLE else pytest.mark.slow)
        for name in (list_models() if names is None else names)
    ]


def slow_params(names: Iterable[str]) -> list:
    """pytest params over ``names``, each marked ``slow`` (a repeat of a path ``make test`` already covers)."""
    return [pytest.param(name, id=name, marks=pytest.mark.slow) for name in names]


@pytest.fixture(autouse=True)
def _one_heavy_test_at_a_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Hold a lock file shared by every xdist worker (their base temp dirs share one parent) while a test marked
    ALL_FRAMEWORKS_AT_ONCE runs; other tests are not held up."""
    if request.node.get_closest_marker("all_frameworks_at_once") is None:
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "all-frameworks-at-once.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


@pytest.fixture(autouse=True, scope="module")
def _release_framework_caches() -> Iterator[None]:
    """After each test file, each backend frees the compiled functions and graph state it keeps (JAX's and Keras'
    caches): without it a worker grew to 10 GB over the suite (measured), and two such workers left no room in
    CI's 24 GiB for a test that holds every framework's model. Per file, not per test: recompiling within a file
    cost 60% more time (measured on test_flax_files)."""
    yield
    for mod in LOADED.values():
        mod.release_caches()
    gc.collect()


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
