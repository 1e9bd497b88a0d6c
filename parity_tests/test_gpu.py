"""GPU parity (marker ``gpu``): CPU vs GPU inside each framework, and across frameworks on GPU.

TF32 is switched off first (it moves logits by ~1e-3). Skips cleanly where no backend sees a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.parity import run_model_parity, tensor_diff

pytestmark = pytest.mark.gpu
WITH_GPU = {b: m for b, m in LOADED.items() if m.gpu_available()}


@pytest.fixture(autouse=True)
def _tf32_off() -> None:
    for mod in WITH_GPU.values():
        mod.set_tf32(False)


@pytest.mark.parametrize("backend", sorted(LOADED))
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet50v2"])
def test_cpu_vs_gpu_within_framework(backend: str, name: str) -> None:
    if backend not in WITH_GPU:
        pytest.skip(f"{backend}: no GPU build or no device")
    mod = WITH_GPU[backend]
    model = mod.import_weights(mod.create_model(name), random_weights(get_spec(name), seed=2))
    x = np.random.default_rng(0).standard_normal((2, 3, 97, 131)).astype("float32")
    cpu = mod.forward_numpy(model, x, features=True, device="cpu")
    gpu = mod.forward_numpy(model, x, features=True, device="gpu")
    tol = tolerance("float32", "gpu", "eval").rel
    for key in cpu:
        assert tensor_diff(cpu[key], gpu[key]).max_rel <= tol, key


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet50v2"])
def test_cross_framework_parity_on_gpu(name: str) -> None:
    if len(WITH_GPU) < 2:
        pytest.skip(f"needs two backends with a GPU; have {sorted(WITH_GPU) or 'none'}")
    for r in run_model_parity(name, WITH_GPU, input_shape=(2, 3, 224, 224), device="gpu"):
        assert r.passed, (r.source, r.target, r.first_divergent_stage)
