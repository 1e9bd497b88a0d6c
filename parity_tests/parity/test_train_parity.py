"""Train-mode parity: one train-mode forward and one SGD step, translated through the spec.

BN momentum (torch 0.1 = paddle/keras 0.9) comes from resnet_spec.numerics; torch's unbiased
running-variance update is translated by resnet_spec.numerics.torch_running_var_as_biased.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import ALL_FRAMEWORKS_AT_ONCE, LOADED, slow_params, zoo_params
from resnet_spec import get_spec
from resnet_spec.numerics import torch_running_var_as_biased
from resnet_spec.random_weights import random_weights
from resnet_spec.shapes import bn_counts
from resnet_tools.parity.engine import TRAIN_POINTS, run_model_train_parity

MODELS = [*zoo_params(["resnet18", "resnet50", "resnet50v2"]), *slow_params(["resnet50v1", "resnext50_32x4d"])]
SHAPE = (2, 3, 97, 131)
FORWARD_POINTS = ("train_logits", "loss", "running_mean", "running_var")
GRADIENT_POINTS = ("input_grad", "grads", "weight_update")


def _records(name: str, dtype: str) -> list:
    if len(LOADED) < 2:
        pytest.skip("needs two backends")
    return run_model_train_parity(name, LOADED, input_shape=SHAPE, seed=3, dtype=dtype)


@ALL_FRAMEWORKS_AT_ONCE
@pytest.mark.parametrize("name", MODELS)
def test_train_step_parity_float64(name: str) -> None:
    """Everything a training step produces agrees for every ordered pair: train-mode logits, loss, input
    gradient, every weight gradient, the SGD update and the running statistics (BN momentum and the
    running-variance estimator translated through resnet_spec.numerics)."""
    records = _records(name, "float64")
    assert len(records) == len(LOADED) * (len(LOADED) - 1)
    for r in records:
        assert set(r.stages) == set(TRAIN_POINTS)
        assert r.passed, f"{r.source}->{r.target}: {r.first_divergent_stage}: {r.stages}"
        assert r.tolerance <= 1e-6 and r.top1_agree == 1.0


@ALL_FRAMEWORKS_AT_ONCE
@pytest.mark.parametrize("name", ["resnet18", "resnet50v2"])
def test_train_forward_loss_and_running_stats_float32(name: str) -> None:
    for r in _records(name, "float32"):
        for point in FORWARD_POINTS:
            assert r.stages[point].max_rel <= r.tolerance, (r.source, r.target, point, r.stages[point])


@pytest.mark.xfail(
    strict=True,
    reason="fp32 gradients of random-weight bottleneck nets differ ~1e-2 between EVERY "
    "pair (ReLU masks flip at |z| ~ 1e-7); float64 parity above proves the math. See docs/parity.md",
)
def test_train_gradients_float32_bottleneck() -> None:
    for r in _records("resnet50", "float32"):
        for point in GRADIENT_POINTS:
            assert r.stages[point].max_rel <= r.tolerance, (r.source, r.target, point)


def test_running_var_translation_is_needed_and_exact() -> None:
    """Without the unbiased->biased translation torch and paddle running_var disagree; with it they agree."""
    if not {"torch", "paddle"} <= set(LOADED):
        pytest.skip("needs torch and paddle")
    spec = get_spec("resnet18")
    weights = random_weights(spec, seed=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 33, 47)).astype("float32")
    labels = np.array([3, 7])
    after = {}
    for b in ("torch", "paddle"):
        mod = LOADED[b]
        model = mod.import_weights(mod.create_model("resnet18"), weights)
        mod.train_step_numpy(model, x, labels, lr=0.1)
        after[b] = mod.export_weights(model)
    key = "layer4.1.bn2.running_var"  # 2 x 2 x 2 = 8 values per channel: n / (n - 1) is visible
    raw = np.abs(after["torch"][key] - after["paddle"][key]).max() / np.abs(after["paddle"][key]).max()
    count = bn_counts(spec, 2, 33, 47)[key.rsplit(".", 1)[0]]
    fixed = torch_running_var_as_biased(after["torch"][key], weights[key], spec.bn_momentum, count)
    assert raw > 1e-4  # the estimators really differ
    np.testing.assert_allclose(fixed, after["paddle"][key], rtol=1e-5)
    mean_key = key.replace("running_var", "running_mean")
    np.testing.assert_allclose(after["torch"][mean_key], after["paddle"][mean_key], rtol=1e-5, atol=1e-6)


def test_bn_counts_cover_every_bn() -> None:
    for name in ("resnet18", "resnet50", "resnet50v2", "resnet50v1", "resnet18v2"):
        spec = get_spec(name)
        bns = {k.rsplit(".", 1)[0] for k in random_weights(spec) if k.endswith("running_var")}
        assert set(bn_counts(spec, 2, 64, 64)) == bns


def test_wrong_momentum_convention_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Giving paddle torch's momentum (0.1 instead of 0.9) must fail, at the running statistics."""
    if not {"torch", "paddle"} <= set(LOADED):
        pytest.skip("needs torch and paddle")
    import resnet_paddle.blocks as paddle_blocks

    monkeypatch.setattr(paddle_blocks, "bn_momentum", lambda spec, _framework: spec.bn_momentum)
    mods = {b: LOADED[b] for b in ("torch", "paddle")}
    records = run_model_train_parity("resnet18", mods, input_shape=(2, 3, 33, 47), seed=1, dtype="float64")
    assert all(not r.passed and r.first_divergent_stage == "running_mean" for r in records)
