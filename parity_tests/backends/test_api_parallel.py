"""The backend packages are parallel: same files, public names, classes and signatures."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from parity_tests.conftest import LOADED
from resnet_spec import list_models
from resnet_tools.core.backends import descriptors

ROOT = Path(__file__).resolve().parents[2]
BACKEND_DIRS = [d.package for d in descriptors().values()]  # from the records
# Framework-specific extras, documented in the create_model docstrings.
EXTRA_PARAMS = {
    "keras": {"data_format", "input_shape"},  # keras.applications-style options
    "flax": {"seed", "compute_dtype"},  # nnx.Rngs' seed; mixed precision is a Flax layer's build-time dtype
}


def test_same_file_sets() -> None:
    files = {d: sorted(p.name for p in (ROOT / d).glob("*.py")) for d in BACKEND_DIRS}
    assert len(files) >= 4 and all(f == files[BACKEND_DIRS[0]] for f in files.values()), files


def _modules() -> dict:
    if len(LOADED) < 2:
        pytest.skip("needs at least two backends")
    return LOADED


def test_same_public_names() -> None:
    mods = _modules()
    names = {b: set(m.__all__) for b, m in mods.items()}
    first = next(iter(names.values()))
    assert all(n == first for n in names.values())
    assert set(list_models()) <= first
    for name in (
        "create_model",
        "export_weights",
        "import_weights",
        "BasicBlock",
        "Bottleneck",
        "PreActBasicBlock",
        "PreActBottleneck",
        "ResNet",
    ):
        assert name in first


@pytest.mark.parametrize(
    "func",
    [
        "create_model",
        "export_weights",
        "import_weights",
        "forward_numpy",
        "fast_forward",
        "param_counts",
        "native_shapes",
        "model_spec",
    ],
)
def test_same_signatures(func: str) -> None:
    sigs = {}
    for b, m in _modules().items():
        params = inspect.signature(getattr(m, func)).parameters
        sigs[b] = [(p.name, p.kind) for p in params.values() if p.name not in EXTRA_PARAMS.get(b, set())]
    first = next(iter(sigs.values()))
    assert all(s == first for s in sigs.values()), sigs
