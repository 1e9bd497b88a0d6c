"""Mixed-precision parity (``resnet parity --dtype bfloat16|float16``): each framework's autocast / mixed
policy against the others and against its own float32; a framework that ignores the request fails."""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights
from resnet_spec.spec import AMP_DTYPES
from resnet_spec.tolerances import tolerance
from resnet_tools.cli import main
from resnet_tools.core.diffs import within
from resnet_tools.parity.engine import run_model_parity

AMP_CPU = {b: m for b, m in LOADED.items() if m.amp_supported("cpu")}
pytestmark = pytest.mark.skipif(len(AMP_CPU) < 2, reason="needs two backends with CPU mixed precision")


@pytest.mark.parametrize("amp", AMP_DTYPES)
@pytest.mark.parametrize(("name", "shape"), [("resnet18", (2, 3, 97, 131)), ("resnet50v2", (3, 3, 96, 128))])
def test_amp_parity_cross_and_own(name: str, shape: tuple[int, int, int, int], amp: str) -> None:
    records = run_model_parity(name, AMP_CPU, input_shape=shape, dtype=amp, seed=3)
    own = [r for r in records if r.against == "own float32"]
    cross = [r for r in records if r.against == "cross"]
    assert {r.source for r in own} == set(AMP_CPU) and all(r.source == r.target for r in own)
    assert len(cross) == len(AMP_CPU) * (len(AMP_CPU) - 1)
    tol = tolerance(amp, "cpu", "eval").rel
    for r in records:
        assert r.passed and r.tolerance == tol, (r.pair(), r.first_divergent_stage, r.stages)
        # Mixed precision really ran: 16-bit rounding is visible against float32, far above fp32 noise.
        assert r.against == "cross" or r.max_rel_diff > 10 * tolerance("float32", "cpu", "eval").rel


def test_amp_forward_differs_from_float32_and_stays_close(backend) -> None:
    if not backend.amp_supported("cpu"):
        pytest.skip(f"{backend.FRAMEWORK}: no CPU mixed precision")
    spec = get_spec("resnet18")
    model = backend.import_weights(backend.create_model(spec), random_weights(spec, seed=5))
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype("float32")
    full = backend.forward_numpy(model, x, features=True)
    half = backend.forward_numpy(model, x, features=True, amp="bfloat16")
    assert all(half[k].dtype == np.float32 and half[k].shape == full[k].shape for k in full)
    rel = np.abs(half["logits"] - full["logits"]).max() / np.abs(full["logits"]).max()
    assert 1e-4 < rel < tolerance("bfloat16", "cpu", "eval").rel
    again = backend.forward_numpy(model, x, features=True)  # mixed precision did not leak into later calls
    assert np.array_equal(again["logits"], full["logits"])


@pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
def test_amp_ignored_by_framework_fails() -> None:
    """paddle.amp.auto_cast makes no effect on CPU: its "mixed" forward equals float32 and must fail."""
    mods = {b: LOADED[b] for b in ("paddle", *AMP_CPU) if b in LOADED}
    records = run_model_parity("resnet18", dict(list(mods.items())[:2]), input_shape=(2, 3, 64, 64), dtype="bfloat16")
    paddle_own = next(r for r in records if r.against == "own float32" and r.source == "paddle")
    assert not paddle_own.passed and paddle_own.first_divergent_stage == "bfloat16 not applied"


def test_non_finite_never_passes() -> None:
    from resnet_tools.core.diffs import tensor_diff

    ref = np.ones((2, 10), "float32")
    assert not within(tensor_diff(ref, np.full_like(ref, np.nan)), 1.0)
    assert not within(tensor_diff(ref, np.full_like(ref, np.inf)), 1.0)
    assert within(tensor_diff(ref, ref), 0.0)


def test_cli_amp_parity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parity", "--models", "resnet18", "--dtype", "bfloat16", "--input", "2x3x64x80"]) == 0
    out = capsys.readouterr().out
    assert "float32 -> bfloat16" in out and "pairs within tolerance" in out
    if "paddle" in LOADED:
        assert "paddle: no bfloat16 mixed precision on cpu; left out" in out


def test_cli_amp_train_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parity", "--models", "resnet18", "--dtype", "float16", "--mode", "train"]) == 2
    assert "eval-only" in capsys.readouterr().err
