"""Shared fixtures. Backends load through resnet_tools.core.backends (paddle before TensorFlow)."""

from __future__ import annotations

import os
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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
