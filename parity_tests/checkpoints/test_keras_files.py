"""Keras 3 files both ways, with files Keras itself writes: keras.applications' ``save_weights`` and
``save`` (ResNet50, ResNet50V2, a transfer-learning model, a features-only base) convert to torch and
paddle files whose logits equal keras.applications' own; our ``.weights.h5`` loads into
keras.applications' model and our ``.keras`` into ``keras.models.load_model`` (TF, JAX and torch Keras
backends). Random weights with random BN statistics and biases, batch 2, H != W."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import LOADED, zoo_params
from resnet_spec import get_spec
from resnet_spec.layouts import nhwc_to_nchw
from resnet_spec.naming import keras_layer_name, keras_order
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import Checkpoint, format_for, read_checkpoint, write_checkpoint
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
SIZE = (64, 96)  # H != W
APPS = [("ResNet50", "resnet50v1"), ("ResNet50V2", "resnet50v2")]

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")


def _randomize(model: Any, seed: int) -> None:
    """Non-trivial BN statistics, BN affine parameters and biases (kernels keep Keras' random init)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape).astype("float32"))
        elif "gamma" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif "kernel" not in w.path:
            w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))


def _app(app: str, seed: int, **options: Any) -> Any:
    import keras

    options.setdefault("classifier_activation", None)
    model = getattr(keras.applications, app)(weights=None, input_shape=(*SIZE, 3), **options)
    _randomize(model, seed)
    return model


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, *SIZE, 3)).astype("float32")


def _torch_logits(path: Path, name: str, **options: Any) -> np.ndarray:
    """Logits of a torchvision-style model loaded from ``path`` with ``torch.load`` + strict load_state_dict."""
    import torch

    rt = LOADED["torch"]
    model = rt.create_model(name, **options)
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return np.asarray(rt.forward_numpy(model, nhwc_to_nchw(_x()))["logits"])


def _paddle_logits(path: Path, name: str, **options: Any) -> np.ndarray:
    """Logits of a paddle.vision-style model loaded with ``paddle.load`` + ``set_state_dict`` (nothing missing)."""
    import paddle

    rp = LOADED["paddle"]
    model = rp.create_model(name, **options)
    missing, unexpected = model.set_state_dict(paddle.load(str(path)))
    assert not missing and not unexpected
    return np.asarray(rp.forward_numpy(model, nhwc_to_nchw(_x()))["logits"])


def _strip_names(path: Path) -> None:
    """Remove the layer names Keras 3.15 records, as older Keras 3 files lack them: Keras' order decides."""
    import h5py

    with h5py.File(path, "r+") as f:
        f.visititems(lambda n, o: o.attrs.__delitem__("name") if "name" in o.attrs else None)


# ---- the order ----------------------------------------------------------------------------------------


D2L = {"conv_bias": True, "shortcut": "conv_when_needed"}  # d2l.ai's ResNet: the shortcut a conv alone


@pytest.mark.parametrize(
    ("name", "options"),
    [
        *(pytest.param(p.values[0], {}, id=p.id, marks=p.marks) for p in zoo_params()),
        ("resnet18", D2L),
        ("resnet50", D2L),
    ],
    ids=str,
)
def test_keras_order_is_the_models_layer_order(name: str, options: dict[str, Any]) -> None:
    """The spec's Keras order is the order Keras lists our model's layers in (what a file numbers by)."""
    spec = get_spec(name, **options)
    model = LOADED["keras"].create_model(spec)
    expected = list(dict.fromkeys(keras_layer_name(e.module) for e in keras_order(spec)))
    assert [layer.name for layer in model.layers if layer.weights] == expected


@pytest.mark.parametrize(
    ("app", "ours"), [*APPS, ("ResNet101", "resnet101v1"), ("ResNet152V2", "resnet152v2")], ids=str
)
def test_keras_order_is_keras_applications_order(app: str, ours: str) -> None:
    import keras

    model = getattr(keras.applications, app)(weights=None, input_shape=(*SIZE, 3))
    expected = list(dict.fromkeys(keras_layer_name(e.module) for e in keras_order(get_spec(ours))))
    assert [layer.name for layer in model.layers if layer.weights] == expected


# ---- keras.applications' files -> torch / paddle ---------------------------------------------------------


@pytest.mark.parametrize(("app", "ours"), APPS)
@pytest.mark.parametrize("saved", ["save_weights", "save_weights_unnamed", "save"])
def test_keras_applications_files_convert_to_torch_and_paddle(app: str, ours: str, saved: str, tmp_path: Path) -> None:
    model = _app(app, seed=3)
    expected = np.asarray(model(_x(), training=False))
    src = tmp_path / ("app.keras" if saved == "save" else "app.weights.h5")
    (model.save if saved == "save" else model.save_weights)(str(src))
    if saved == "save_weights_unnamed":
        _strip_names(src)
    pth, pdparams = tmp_path / "m.pth", tmp_path / "m.pdparams"
    result = convert(src, pth, verify=True)
    assert result.spec.name == ours and result.verify_frameworks == ("keras", "torch")
    convert(src, pdparams)
    assert tensor_diff(expected, _torch_logits(pth, ours)).max_rel <= TOL
    assert tensor_diff(expected, _paddle_logits(pdparams, ours)).max_rel <= TOL


@pytest.mark.parametrize("saved", ["save_weights", "save"])
def test_transfer_learning_model_converts_with_its_head(saved: str, tmp_path: Path) -> None:
    """keras.applications base (include_top=False) as one layer, then pooling, dropout and a new Dense head."""
    import keras

    base = _app("ResNet50", seed=4, include_top=False)
    inputs = keras.Input((*SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(7, bias_initializer="random_normal")(x)
    model = keras.Model(inputs, outputs)
    expected = np.asarray(model(_x(), training=False))
    src = tmp_path / ("tl.keras" if saved == "save" else "tl.weights.h5")
    (model.save if saved == "save" else model.save_weights)(str(src))
    dst = tmp_path / "tl.pth"
    result = convert(src, dst)
    assert result.spec.name == "resnet50v1" and result.spec.num_classes == 7
    assert any("transfer-learning head" in n for n in result.notes)
    assert tensor_diff(expected, _torch_logits(dst, "resnet50v1", num_classes=7)).max_rel <= TOL


def test_features_only_base_reads_as_pooled_features(tmp_path: Path) -> None:
    base = _app("ResNet50V2", seed=5, include_top=False)
    expected = np.asarray(base(_x(), training=False)).mean(axis=(1, 2))  # the zoo's features are pooled
    src, dst = tmp_path / "base.keras", tmp_path / "base.pdparams"
    base.save(str(src))
    assert convert(src, dst).spec.num_classes == 0
    assert tensor_diff(expected, _paddle_logits(dst, "resnet50v2", num_classes=0)).max_rel <= TOL


def test_softmax_head_is_noted(tmp_path: Path) -> None:
    model = _app("ResNet50", seed=6, classifier_activation="softmax")
    src = tmp_path / "soft.keras"
    model.save(str(src))
    notes = read_checkpoint(src, format_for(src)).notes
    assert any("applies softmax" in n and "logits" in n for n in notes)


# ---- ours -> keras.applications / load_model -------------------------------------------------------------


@pytest.mark.parametrize(("app", "ours"), APPS)
def test_our_weights_file_loads_into_keras_applications(app: str, ours: str, tmp_path: Path) -> None:
    spec = get_spec(ours)
    weights = random_weights(spec, seed=7)
    path = tmp_path / "ours.weights.h5"
    write_checkpoint(Checkpoint(weights), spec, path, format_for(path))
    model = _app(app, seed=0)
    model.load_weights(str(path))  # Keras' own reader: by position, with every shape checked
    rt = LOADED["torch"]
    expected = rt.forward_numpy(rt.import_weights(rt.create_model(ours), weights), nhwc_to_nchw(_x()))["logits"]
    assert tensor_diff(expected, np.asarray(model(_x(), training=False))).max_rel <= TOL


def test_our_order_broken_on_purpose_is_caught_by_keras_applications(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canonical (torchvision) order instead of Keras': stage 1's shortcut and last conv share a shape,
    so Keras loads the file and computes other logits; this is what the order test above guards."""
    from resnet_spec.params import canonical_table
    from resnet_tools.checkpoints import keras_h5

    spec = get_spec("resnet50v1")
    weights = random_weights(spec, seed=8)
    monkeypatch.setattr(keras_h5, "keras_order", canonical_table)
    path = tmp_path / "wrong.weights.h5"
    write_checkpoint(Checkpoint(weights), spec, path, format_for(path))
    model = _app("ResNet50", seed=0)
    with pytest.raises(ValueError, match="could not be loaded"):  # later stages' shapes differ
        model.load_weights(str(path))
    monkeypatch.undo()
    # read back by our reader, the names still say where each layer goes (and a note says the order is off)
    ckpt = read_checkpoint(path, format_for(path))
    assert any("out of Keras' order" in n for n in ckpt.notes)
    assert all(np.array_equal(ckpt.weights[k], v) for k, v in weights.items())


def test_our_keras_archive_loads_with_load_model_on_every_keras_backend(tmp_path: Path) -> None:
    """No custom objects; the same logits on TensorFlow, JAX and torch as our torch model's."""
    spec = get_spec("resnet18", num_classes=5)
    weights = random_weights(spec, seed=9)
    path = tmp_path / "ours.keras"
    src = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(weights), spec, src, format_for(src))
    convert(src, path, verify=True)
    x = _x()
    np.save(tmp_path / "x.npy", x)
    rt = LOADED["torch"]
    expected = rt.forward_numpy(rt.import_weights(rt.create_model(spec), weights), nhwc_to_nchw(x))["logits"]
    code = (
        "import sys, numpy as np, keras\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        f"np.save({str(tmp_path)!r} + f'/{{keras.backend.backend()}}.npy', "
        f"keras.ops.convert_to_numpy(m(np.load({str(tmp_path / 'x.npy')!r}), training=False)))\n"
        "assert 'resnet_keras' not in sys.modules\n"
    )
    for backend in ("tensorflow", "jax", "torch"):
        env = {**__import__("os").environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, (backend, res.stderr[-1500:])
        assert tensor_diff(expected, np.load(tmp_path / f"{backend}.npy")).max_rel <= TOL, backend


def test_keras_archive_round_trip_keeps_float64(tmp_path: Path) -> None:
    spec = get_spec("resnet18", num_classes=3)
    weights = {k: v.astype("float64") for k, v in random_weights(spec, seed=10).items()}
    src, dst = tmp_path / "w.npz", tmp_path / "w.keras"
    write_checkpoint(Checkpoint(weights), spec, src, format_for(src))
    convert(src, dst)
    back = read_checkpoint(dst, format_for(dst)).weights
    assert all(back[k].dtype == np.float64 and np.array_equal(back[k], v) for k, v in weights.items())


# ---- the CLI with Keras sources ------------------------------------------------------------------------


def test_predict_runs_a_keras_source_on_keras(tmp_path: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_sample_images  # real photos shipped with scikit-learn

    from resnet_tools.predict.run import predict

    src = tmp_path / "app.weights.h5"
    _app("ResNet50V2", seed=11).save_weights(str(src))
    photo = tmp_path / "china.jpg"
    Image.fromarray(load_sample_images().images[0]).save(photo)
    run = predict([str(photo)], str(src), path="eager")
    assert run.backend == "keras" and run.spec.name == "resnet50v2"


# ---- bad Keras files: one line, exit 2, nothing written --------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import keras

    out: dict[str, tuple[Path, str]] = {}
    small = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    out["small_cnn"] = (tmp_path / "small.weights.h5", "match no zoo model")
    small.save_weights(str(out["small_cnn"][0]))

    base = _app("ResNet50", seed=1, include_top=False)
    inputs = keras.Input((*SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    x = keras.layers.Dense(32, activation="relu")(x)
    two = keras.Model(inputs, keras.layers.Dense(3)(x))
    out["two_dense_head"] = (tmp_path / "two.weights.h5", "a head other than one Dense layer")
    two.save_weights(str(out["two_dense_head"][0]))

    flat = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(base(inputs))))
    out["flatten_head"] = (tmp_path / "flat.keras", "through Flatten")
    flat.save(str(out["flatten_head"][0]))

    unpooled = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dropout(0.1)(base(inputs))))  # per pixel
    out["unpooled_head"] = (tmp_path / "unpooled.keras", "reads average-pooled features (GlobalAveragePooling2D)")
    unpooled.save(str(out["unpooled_head"][0]))

    nocfg = tmp_path / "nocfg.keras"
    with zipfile.ZipFile(nocfg, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    out["no_config"] = (nocfg, "without config.json")
    cut = tmp_path / "cut.keras"
    cut.write_bytes(out["flatten_head"][0].read_bytes()[:5000])
    out["truncated"] = (cut, "cannot read")

    unnamed = tmp_path / "unnamed.weights.h5"
    _app("ResNet50", seed=2).save_weights(str(unnamed))
    _strip_names(unnamed)
    out["wrong_model"] = (unnamed, "not a resnet50v2 weights file")
    return out


def test_bad_keras_files_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for case, (path, expected) in _bad_files(tmp_path).items():
        dst = tmp_path / f"{case}.pth"
        args = ["convert", str(path), str(dst)] + (["--model", "resnet50v2"] if case == "wrong_model" else [])
        assert main(args) == 2, case
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") <= 2 and "Traceback" not in err, (case, err)
        assert not dst.exists() and not list(tmp_path.glob(f".{case}*")), case


def test_a_read_keras_file_is_closed_without_waiting_for_the_garbage_collector(tmp_path: Path) -> None:
    """Once its tensors are read, a .weights.h5 can be opened for writing again at once (a reference cycle in the
    reader used to keep it open until Python's cycle collector ran: a flaky 'file is already open')."""
    import gc

    import h5py

    spec = get_spec("resnet18")
    path = tmp_path / "w.weights.h5"
    write_checkpoint(Checkpoint(random_weights(spec, seed=1)), spec, path, format_for(path))
    gc.disable()
    try:
        read_checkpoint(path, format_for(path))
        with h5py.File(path, "r+"):
            pass
    finally:
        gc.enable()
