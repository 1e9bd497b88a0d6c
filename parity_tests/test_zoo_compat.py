"""Official zoos load as they are: paddle.vision state dicts, keras.applications weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.layouts import nchw_to_nhwc
from resnet_spec.random_weights import random_weights
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.core.diffs import tensor_diff

TOL = 1e-5


@pytest.mark.parametrize(
    ("ours", "official"),
    [
        ("resnet18", "resnet18"),
        ("resnet50", "resnet50"),
        ("resnext50_32x4d", "resnext50_32x4d"),
        ("wide_resnet50_2", "wide_resnet50_2"),
    ],
)
def test_paddle_vision_state_dict_loads_as_is(ours: str, official: str) -> None:
    rp = LOADED.get("paddle") or pytest.skip("paddle not installed")
    import paddle
    from paddle.vision import models

    ref = getattr(models, official)()
    ref.eval()
    rp_weights = random_weights(get_spec(ours), seed=1)
    donor = rp.import_weights(rp.create_model(ours), rp_weights)  # non-trivial BN stats in paddle.vision's keys
    ref.set_state_dict(donor.state_dict())
    model = rp.create_model(ours)
    missing, unexpected = model.set_state_dict(ref.state_dict())
    assert not missing and not unexpected
    x = np.random.default_rng(0).standard_normal((2, 3, 97, 131)).astype("float32")
    with paddle.no_grad():
        expected = ref(paddle.to_tensor(x)).numpy()
    assert tensor_diff(expected, rp.forward_numpy(model, x)["logits"]).max_rel == 0.0


def _keras_app_legacy_h5(app: str, path: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Build a keras.applications model with random non-trivial weights, save legacy HDF5, return (x, logits)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = getattr(keras.applications, app)(weights=None, classifier_activation=None, input_shape=(97, 131, 3))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            if "moving_variance" in w.path:
                w.assign(rng.uniform(0.5, 2.0, w.shape).astype("float32"))
            elif "kernel" not in w.path:
                w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    x = rng.standard_normal((2, 97, 131, 3)).astype("float32")
    return x, np.asarray(model(x, training=False))


@pytest.mark.parametrize(("app", "ours"), [("ResNet50", "resnet50v1"), ("ResNet50V2", "resnet50v2")])
def test_keras_applications_h5_to_every_backend(app: str, ours: str, tmp_path: Path) -> None:
    if len(LOADED) < 3:
        pytest.skip("needs all three backends")
    h5 = tmp_path / f"{app}.h5"
    x_nhwc, expected = _keras_app_legacy_h5(app, h5, seed=2)
    ckpt = read_checkpoint(h5, format_for(h5))
    dst = tmp_path / "ours.safetensors"
    result = convert(h5, dst)  # the architecture is identified from keras.applications' layer names
    assert result.spec.name == ours
    assert read_checkpoint(dst, format_for(dst)).weights.keys() == ckpt.weights.keys()
    x_nchw = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
    for b, mod in LOADED.items():
        model = mod.import_weights(mod.create_model(ours), ckpt.weights)
        got = mod.forward_numpy(model, x_nchw)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, b


def test_keras_applications_weights_copy_layer_by_layer() -> None:
    rk = LOADED.get("keras") or pytest.skip("keras not installed")
    import keras

    app = keras.applications.ResNet101V2(weights=None, classifier_activation=None, input_shape=(64, 96, 3))
    ours = rk.create_model("resnet101v2")
    for layer in app.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 96)).astype("float32")
    expected = np.asarray(app(nchw_to_nhwc(x), training=False))
    assert tensor_diff(expected, rk.forward_numpy(ours, x)["logits"]).max_rel <= TOL


def test_torch_to_safetensors_loads_neither_paddle_nor_tensorflow(tmp_path: Path) -> None:
    rt = LOADED.get("torch") or pytest.skip("torch not installed")
    import torch

    src = tmp_path / "m.pth"
    torch.save(rt.create_model("resnet18").state_dict(), src)
    code = (
        "import sys\nfrom resnet_tools.cli import main\n"
        f"assert main(['convert', {str(src)!r}, {str(tmp_path / 'm.safetensors')!r}]) == 0\n"
        "print('loaded:', sorted(m for m in ('torch', 'paddle', 'tensorflow') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "loaded: ['torch']" in res.stdout
