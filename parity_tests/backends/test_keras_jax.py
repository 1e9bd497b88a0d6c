"""Keras on its JAX backend (what runs on the GPU machine): float64 is really float64, train steps work,
and the dtype policy is honoured. JAX runs in a subprocess (Keras picks one backend per process)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from parity_tests.conftest import LOADED

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None or "torch" not in LOADED, reason="needs jax and torch"
)

SCRIPT = textwrap.dedent("""
    import json
    from resnet_tools.core.backends import load_backends
    from resnet_tools.parity.engine import run_model_parity, run_model_train_parity
    mods = load_backends(["torch", "keras"])
    import keras
    out = {"backend": keras.backend.backend()}
    for dtype in ("float64", "float32"):
        recs = run_model_parity("resnet18", mods, input_shape=(2, 3, 41, 56), dtype=dtype, path="eager")
        out[f"eval_{dtype}"] = [[r.passed, r.max_rel_diff] for r in recs]
    recs = run_model_train_parity("resnet50v2", mods, input_shape=(2, 3, 40, 48), dtype="float64")
    out["train_float64"] = [[r.passed, {k: v.max_rel for k, v in r.stages.items()}] for r in recs]
    print("RESULT" + json.dumps(out))
""")


def _run_jax(script: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    return json.loads(line[len("RESULT") :])


def test_keras_jax_float64_and_train_parity_with_torch() -> None:
    from resnet_spec.tolerances import tolerance

    out = _run_jax(SCRIPT)
    assert out["backend"] == "jax"
    # float64 on JAX: BatchNormalization would compute in float32 (~1e-7) without resnet_keras' fix.
    assert all(ok and rel <= tolerance("float64", "cpu", "eval").rel for ok, rel in out["eval_float64"])
    assert all(ok and rel <= tolerance("float32", "cpu", "eval").rel for ok, rel in out["eval_float32"])
    tol = tolerance("float64", "cpu", "train").rel
    for ok, stages in out["train_float64"]:
        assert ok and set(stages) >= {"grads", "weight_update", "running_var"}
        assert max(stages.values()) <= tol, stages
