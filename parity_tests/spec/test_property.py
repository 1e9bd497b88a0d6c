"""Property test: random small specs build identically in all three backends; bad specs fail cleanly."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity_tests.conftest import LOADED
from resnet_spec import SpecError, count_params
from resnet_spec.naming import native_table
from resnet_spec.random_weights import random_weights
from resnet_spec.spec import SPEC_PATH, resolve_model, validate_document
from resnet_spec.tolerances import tolerance

FP32_EVAL = tolerance("float32", "cpu", "eval").rel  # the table's bound, not a local one

BASE_DOC = yaml.safe_load(SPEC_PATH.read_text())
pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs all three backends")


@st.composite
def entries(draw: st.DrawFn) -> dict:
    """A small valid model entry: any variant, block, depths 1-3, widths, groups, stem and bias choices."""
    variant = draw(st.sampled_from(["v1.5", "v1", "v2"]))
    block = draw(st.sampled_from(["basic", "bottleneck"]))
    base = draw(st.sampled_from([2, 4, 8]))
    entry: dict = {
        "variant": variant,
        "block": block,
        "depths": draw(st.lists(st.integers(1, 3), min_size=4, max_size=4)),
        "widths": [base * m for m in (1, 2, 2, 4)],
        "stem": {
            "width": draw(st.sampled_from([4, 8])),
            "kernel": draw(st.sampled_from([3, 7])),
            "stride": draw(st.sampled_from([1, 2])),
            "pool": draw(st.booleans()),
        },
        "conv_bias": {k: draw(st.booleans()) for k in ("stem", "shortcut", "inner", "last")},
        "params": {"trainable": 1, "bn_stats": 1},
    }
    if block == "bottleneck":
        entry["groups"] = draw(st.sampled_from([1, 2]))
        entry["width_per_group"] = draw(st.sampled_from([32, 64, 128]))
        entry["stride_on"] = draw(st.sampled_from(["conv1x1", "conv3x3"]))
    if variant != "v2":
        entry["stem"]["pool_pad"] = draw(st.sampled_from(["zero", "neg_inf"]))
        entry["stem"]["norm"] = draw(st.booleans())
    return entry


def _resolve(entry: dict):
    doc = copy.deepcopy(BASE_DOC)
    doc["models"] = {"rand": entry}
    validate_document(doc)
    return resolve_model("rand", entry, doc)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=entries(), seed=st.integers(0, 2**16))
def test_random_specs_build_identically(entry: dict, seed: int) -> None:
    spec = _resolve(entry)
    counts = count_params(spec)
    weights = random_weights(spec, seed=seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, 23, 29)).astype("float32")
    logits = {}
    for name, backend in LOADED.items():
        model = backend.create_model(spec)
        assert backend.param_counts(model) == counts
        assert backend.native_shapes(model) == {ne.key: ne.shape for ne in native_table(spec, name)}
        backend.import_weights(model, weights)
        assert all(np.array_equal(weights[k], v) for k, v in backend.export_weights(model).items())
        logits[name] = backend.forward_numpy(model, x)["logits"]
    ref = logits["torch"]
    for name, out in logits.items():
        assert np.abs(out - ref).max() <= FP32_EVAL * max(np.abs(ref).max(), 1e-6), name


INVALIDATORS = {
    "depths too short": lambda e: e.update(depths=[1, 1, 1]),
    "depth zero": lambda e: e.update(depths=[1, 0, 1, 1]),
    "unknown block": lambda e: e.update(block="triple"),
    "unknown variant": lambda e: e.update(variant="v3"),
    "groups on basic": lambda e: e.update(block="basic", groups=4),
    "stem kernel 4": lambda e: e["stem"].update(kernel=4),
    "bn eps zero": lambda e: e.update(bn_eps=0),
    "unknown field": lambda e: e.update(dropout=0.5),
    "width not int": lambda e: e.update(widths=[8, 16, "x", 32]),
    "negative width": lambda e: e.update(widths=[8, -16, 16, 32]),
    "stride 3": lambda e: e.update(stage_strides=[1, 3, 2, 2]),
    "params missing": lambda e: e.pop("params"),
    "conv_bias partial": lambda e: e.update(conv_bias={"stem": True}),
}


@settings(max_examples=40, deadline=None)
@given(entry=entries(), breaker=st.sampled_from(sorted(INVALIDATORS)))
def test_random_invalid_specs_are_rejected(entry: dict, breaker: str) -> None:
    INVALIDATORS[breaker](entry)
    with pytest.raises(SpecError) as exc:
        _resolve(entry)
    assert "model 'rand'" in str(exc.value) or "models" in str(exc.value)
