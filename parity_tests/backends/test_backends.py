"""Every model in every backend: exact counts, native names, logits and per-stage shapes, options."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from parity_tests.conftest import zoo_params
from resnet_spec import FEATURE_NAMES, SpecError, feature_shapes, get_spec, list_models, logits_shape
from resnet_spec.naming import native_table
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.core.diffs import tensor_diff

SIZES = [(224, 224), (97, 131)]


@pytest.mark.parametrize("name", zoo_params())
def test_param_counts_and_native_names(backend: ModuleType, name: str) -> None:
    model = backend.create_model(name)
    spec = get_spec(name)
    assert backend.param_counts(model) == (spec.expected_trainable, spec.expected_bn_stats)
    # The canonical table maps one to one onto the framework's own keys and shapes.
    expected = {ne.key: ne.shape for ne in native_table(spec, backend.FRAMEWORK)}
    assert backend.native_shapes(model) == expected


@pytest.mark.parametrize("name", zoo_params())
def test_logits_and_stage_shapes(backend: ModuleType, name: str, rng: np.random.Generator) -> None:
    model = backend.create_model(name)
    spec = get_spec(name)
    for h, w in SIZES:
        x = rng.standard_normal((2, 3, h, w)).astype("float32")
        out = backend.forward_numpy(model, x, features=True)
        assert out["logits"].shape == logits_shape(spec, 2)
        assert np.isfinite(out["logits"]).all()
        expected = feature_shapes(spec, h, w)
        assert {k: out[k].shape[1:] for k in FEATURE_NAMES} == expected


def test_headless_returns_pooled_features(backend: ModuleType, rng: np.random.Generator) -> None:
    model = backend.create_model("resnet50", num_classes=0)
    x = rng.standard_normal((3, 3, 64, 80)).astype("float32")
    out = backend.forward_numpy(model, x, features=True)
    assert out["logits"].shape == (3, 2048)
    np.testing.assert_allclose(out["logits"], out["stage4"].mean(axis=(2, 3)), rtol=1e-4, atol=1e-5)


def test_num_classes_and_in_channels(backend: ModuleType, rng: np.random.Generator) -> None:
    model = backend.create_model("resnet18", num_classes=7, in_channels=1)
    out = backend.forward_numpy(model, rng.standard_normal((2, 1, 40, 56)).astype("float32"))
    assert out["logits"].shape == (2, 7)


def test_cifar_stem(backend: ModuleType, rng: np.random.Generator) -> None:
    model = backend.create_model("resnet18", num_classes=10, stem="cifar")
    spec = model.spec
    out = backend.forward_numpy(model, rng.standard_normal((2, 3, 32, 32)).astype("float32"), features=True)
    assert {k: out[k].shape[1:] for k in FEATURE_NAMES} == feature_shapes(spec, 32, 32)
    assert out["stem"].shape[2:] == (32, 32)


@pytest.mark.parametrize("name", ["resnet50", "resnet50v2"])
def test_dilation_output_stride_8(backend: ModuleType, name: str, rng: np.random.Generator) -> None:
    model = backend.create_model(name, replace_stride_with_dilation=(False, True, True))
    out = backend.forward_numpy(model, rng.standard_normal((2, 3, 97, 131)).astype("float32"), features=True)
    assert {k: out[k].shape[1:] for k in FEATURE_NAMES} == feature_shapes(model.spec, 97, 131)
    assert out["stage4"].shape[2:] == (13, 17)  # ceil(97 / 8), ceil(131 / 8)


@pytest.mark.parametrize(
    ("name", "last"),
    [
        ("resnet18", "bn2.weight"),
        ("resnet50", "bn3.weight"),
        ("resnet50v2", "conv3.weight"),
        ("resnet18v2", "conv2.weight"),
    ],
)
def test_zero_init_residual(backend: ModuleType, name: str, last: str) -> None:
    weights = backend.export_weights(backend.create_model(name, zero_init_residual=True))
    lasts = [v for k, v in weights.items() if k.startswith("layer") and k.endswith(last)]
    assert lasts and all(not v.any() for v in lasts)
    default = backend.export_weights(backend.create_model(name))
    assert all(v.any() for k, v in default.items() if k.startswith("layer") and k.endswith(last))


def test_unknown_model_and_bad_override(backend: ModuleType) -> None:
    with pytest.raises(SpecError, match="known models: resnet18, resnet34"):
        backend.create_model("resnet500")
    with pytest.raises(SpecError, match="unknown option"):
        backend.create_model("resnet18", widht=3)
    with pytest.raises(SpecError, match="bottleneck"):
        backend.resnet18(replace_stride_with_dilation=(True, True, True))


def test_builders_are_generated_from_the_yaml() -> None:
    """builders.py cannot drift from resnets.yaml: each equals what ``make builders`` writes."""
    from pathlib import Path

    from resnet_spec.codegen import BACKENDS, builders_source

    root = Path(__file__).resolve().parents[2]
    for framework in BACKENDS:
        path = root / f"resnet_{framework}" / "builders.py"
        assert path.read_text() == builders_source(framework), f"{path} differs: run make builders"


def test_builders_match_create_model(backend: ModuleType) -> None:
    """One explicit ``def <name>`` per YAML model, in the YAML's order, each building its own name."""
    import ast
    import importlib
    import inspect

    module = importlib.import_module(f"{backend.__name__}.builders")
    assert module.__all__ == list_models()
    tree = ast.parse(inspect.getsource(module))
    defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert list(defs) == list_models()
    for name, fn in defs.items():
        call = fn.body[-1].value  # return create_model("<name>", **options)
        assert isinstance(call, ast.Call) and call.func.id == "create_model", name
        assert call.args[0].value == name, f"{name}() builds {call.args[0].value}"
        assert getattr(backend, name) is getattr(module, name) and name in backend.__all__
    model = backend.resnext50_32x4d(num_classes=5)
    assert backend.model_spec(model) == get_spec("resnext50_32x4d", num_classes=5)


FAST_CASES = [
    ("resnet18", "float32"),
    ("resnet50v1", "float32"),
    ("resnext50_32x4d", "float32"),
    ("resnet50v2", "float32"),
    ("resnet18", "float64"),
]
#: Odd sides stay odd at every stride-2 layer; even, non-square sides exercise asymmetric padding.
FAST_SIZES = [(97, 131), (96, 128)]


@pytest.mark.parametrize(("name", "dtype"), FAST_CASES)
@pytest.mark.parametrize("size", FAST_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_path_within_parity_tolerance_of_eager(
    backend: ModuleType, name: str, dtype: str, size: tuple[int, int], rng: np.random.Generator
) -> None:
    spec = get_spec(name)
    model = backend.import_weights(backend.create_model(name, dtype=dtype), random_weights(spec, seed=3, dtype=dtype))
    path, run = backend.fast_forward(model, features=True)
    if backend.FRAMEWORK == "paddle" and dtype == "float64":
        # Paddle Inference is float32-only: the fast path IS dygraph here, and says so (nothing to compare).
        assert path.startswith("dygraph") and "float32 only" in path
        return
    x = rng.standard_normal((3, 3, *size)).astype(dtype)
    eager = backend.forward_numpy(model, x, features=True)
    assert path and path != "eager" and not path.startswith("dygraph")
    fast = run(x)
    assert set(fast) == set(eager) == {*FEATURE_NAMES, "logits"}
    tol = tolerance(dtype, "cpu", "eval").rel
    for k, ref in eager.items():
        assert fast[k].dtype == ref.dtype and fast[k].shape == ref.shape, k
        assert tensor_diff(ref, fast[k]).max_rel <= tol, (k, tensor_diff(ref, fast[k]))
    assert set(backend.fast_forward(model)[1](x[:1])) == {"logits"}


@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d", "resnet50v2"])
def test_dilation_numeric_parity(name: str) -> None:
    """Dilated stages compute the same numbers in every backend (a backend ignoring the dilation keeps
    the shapes of a strided stage only by accident; here stage3/4 would be off by ~0.5 relative)."""
    from parity_tests.conftest import LOADED
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_spec.tolerances import tolerance
    from resnet_tools.parity.engine import compare

    if len(LOADED) < 2:
        pytest.skip("needs two backends")
    spec = get_spec(name, replace_stride_with_dilation=(False, True, True))
    weights = random_weights(spec, seed=9)
    x = np.random.default_rng(2).standard_normal((2, 3, 96, 128)).astype("float32")  # even, non-square
    outs = {
        b: m.forward_numpy(m.import_weights(m.create_model(spec), weights), x, features=True) for b, m in LOADED.items()
    }
    ref = outs.pop(next(iter(outs)))
    tol = tolerance("float32", "cpu", "eval").rel
    for b, out in outs.items():
        result = compare(ref, out, tol)
        assert result["passed"], (b, result["first_divergent_stage"], result["stages"])


def test_tensor_diff_is_absolute_and_relative_to_the_reference() -> None:
    from resnet_tools.core.diffs import tensor_diff

    ref = np.array([[4.0, -8.0], [2.0, 1.0]])
    d = tensor_diff(ref, ref + np.array([[0.0, -0.5], [0.25, 0.0]]))  # the largest change is negative
    assert d.max_abs == 0.5 and d.max_rel == 0.5 / 8.0
    assert tensor_diff(ref, ref).max_abs == 0.0 and tensor_diff(ref, ref).cosine == pytest.approx(1.0)
