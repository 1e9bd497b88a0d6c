"""GPU parity (marker ``gpu``): CPU vs GPU inside each framework, and across frameworks on GPU.

TF32 is switched off first (it moves logits by ~1e-3). Skips cleanly where no backend sees a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights
from resnet_spec.spec import AMP_DTYPES
from resnet_spec.tolerances import tolerance
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff
from resnet_tools.parity.engine import run_model_parity, run_model_train_parity

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


@pytest.mark.parametrize("name", ["resnet18", "resnet50v2"])
def test_train_parity_on_gpu_float64(name: str) -> None:
    """One train-mode step in float64 on the GPU (torch CUDA, Keras on JAX with 64-bit mode, paddle GPU)."""
    if len(WITH_GPU) < 2:
        pytest.skip(f"needs two backends with a GPU; have {sorted(WITH_GPU) or 'none'}")
    records = run_model_train_parity(name, WITH_GPU, input_shape=(2, 3, 64, 80), device="gpu", dtype="float64")
    assert records
    for r in records:
        assert r.passed, (r.source, r.target, r.first_divergent_stage, r.stages)


@pytest.mark.parametrize("amp", AMP_DTYPES)
def test_amp_parity_on_gpu(amp: str) -> None:
    mods = {b: m for b, m in WITH_GPU.items() if m.amp_supported("gpu")}
    if len(mods) < 2:
        pytest.skip(f"needs two backends with GPU mixed precision; have {sorted(mods) or 'none'}")
    records = run_model_parity("resnet50", mods, input_shape=(4, 3, 96, 128), device="gpu", dtype=amp)
    assert {r.against for r in records} == {"cross", "own float32"}
    for r in records:
        assert r.passed, (r.pair(), r.first_divergent_stage, r.stages)


def test_bench_gpu_rows(tmp_path: Path) -> None:
    if not WITH_GPU:
        pytest.skip("no backend with a GPU")
    out = tmp_path / "bench.json"
    backends = ",".join(sorted(WITH_GPU))
    rc = main(
        [
            "bench",
            "--device",
            "gpu",
            "--models",
            "resnet18",
            "--backends",
            backends,
            "--batch",
            "2",
            "--size",
            "64",
            "--repeats",
            "2",
            "--min-time",
            "0",
            "--paths",
            "eager fp32,channels_last bf16,jax.jit fp32,jax.jit mixed bf16,dygraph fp32",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["device"] == "gpu" and data["machine"].get("gpu") and data["peaks"]["bf16"] > data["peaks"]["fp32"]
    ours = [r for r in data["rows"] if r["implementation"] == "ours"]
    assert ours and all(not r["error"] and r["images_per_s"] > 0 and r["peak_gpu_mb"] > 0 for r in ours), ours
    assert {r["precision"] for r in ours} >= {"fp32", "bf16"}
