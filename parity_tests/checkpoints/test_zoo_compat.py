"""Official zoos load as they are (paddle.vision state dicts, keras.applications weights), and
independent peer implementations compute what ours do with the same weights: the architecture
checks that cross-backend parity cannot make (an error in the shared plan is in every backend)."""

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
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel


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


def hf_key(torchvision_key: str) -> str:
    """torchvision's state_dict key -> Hugging Face transformers' ResNet key (same tensor, same layout)."""
    import re

    if torchvision_key.startswith("fc."):
        return "classifier.1." + torchvision_key.removeprefix("fc.")
    if m := re.fullmatch(r"(conv|bn)1\.(\w+)", torchvision_key):
        part = "convolution" if m[1] == "conv" else "normalization"
        return f"resnet.embedder.embedder.{part}.{m[2]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(\w+)", torchvision_key)
    assert m, torchvision_key
    stage, block, module, attr = int(m[1]) - 1, m[2], m[3], m[4]
    prefix = f"resnet.encoder.stages.{stage}.layers.{block}"
    if module.startswith("downsample"):
        return f"{prefix}.shortcut.{'convolution' if module.endswith('0') else 'normalization'}.{attr}"
    return f"{prefix}.layer.{int(module[-1]) - 1}.{'convolution' if module[:-1] == 'conv' else 'normalization'}.{attr}"


def _hf_model(name: str, *, downsample_in_bottleneck: bool = False):
    """transformers' ResNet configured as ``resnet bench`` configures its torch stand-in."""
    from transformers import ResNetConfig, ResNetForImageClassification

    from resnet_tools.bench.paths.torch import hf_resnet_config

    config = hf_resnet_config(name)
    assert config is not None, name
    # False: the stride on the 3x3 conv (v1.5); True moves it to the first 1x1 (v1), a check that can fail
    config["downsample_in_bottleneck"] = downsample_in_bottleneck
    return ResNetForImageClassification(ResNetConfig(**config)).eval()


def _hf_logits(name: str, size: tuple[int, int], **config: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Hugging Face's logits, ours) for the same random weights (non-trivial BN statistics) and batch."""
    import torch

    rt = LOADED["torch"]
    ours = rt.import_weights(rt.create_model(name), random_weights(get_spec(name), seed=4))
    hf = _hf_model(name, **config)
    state = {hf_key(k): v for k, v in ours.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    x = np.random.default_rng(1).standard_normal((2, 3, *size)).astype("float32")
    with torch.no_grad():
        theirs = hf(pixel_values=torch.from_numpy(x)).logits.numpy()
    return theirs, rt.forward_numpy(ours, x)["logits"]


@pytest.mark.parametrize("size", [(97, 131), (96, 128)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_hugging_face_resnet_computes_ours(name: str, size: tuple[int, int]) -> None:
    """transformers' ResNet (an implementation of v1.5 written apart from torchvision and from ours)
    gives our logits with our weights, at odd and at even non-square sizes."""
    pytest.importorskip("transformers", reason="dev extra: Hugging Face transformers (peer v1.5 implementation)")
    if "torch" not in LOADED:
        pytest.skip("torch not installed")
    theirs, ours = _hf_logits(name, size)
    assert tensor_diff(theirs, ours).max_rel <= TOL


def test_hugging_face_check_sees_stride_placement() -> None:
    """The check can fail: with the stride moved to the first 1x1 conv (ResNet v1) the peer disagrees."""
    pytest.importorskip("transformers", reason="dev extra: Hugging Face transformers (peer v1.5 implementation)")
    if "torch" not in LOADED:
        pytest.skip("torch not installed")
    theirs, ours = _hf_logits("resnet50", (96, 128), downsample_in_bottleneck=True)
    assert tensor_diff(theirs, ours).max_rel > 100 * TOL
