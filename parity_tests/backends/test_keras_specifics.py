"""Keras-only behaviour: NCHW data_format, fixed input shapes, the V2 stem's zero-padded max-pool, layer names."""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import get_backend
from resnet_spec import get_spec
from resnet_spec.errors import ResNetError
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance


def test_channels_first_matches_channels_last(rng: np.random.Generator) -> None:
    rk = get_backend("keras")
    nhwc = rk.create_model("resnet18")
    nchw = rk.create_model("resnet18", data_format="channels_first")
    weights = random_weights(get_spec("resnet18"), seed=3)
    rk.import_weights(nhwc, weights)
    rk.import_weights(nchw, weights)
    x = rng.standard_normal((2, 3, 45, 61)).astype("float32")
    a = rk.forward_numpy(nhwc, x, features=True)
    b = rk.forward_numpy(nchw, x, features=True)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5 * np.abs(a[key]).max())


def test_keras_applications_layer_names() -> None:
    rk = get_backend("keras")
    names = {layer.name for layer in rk.create_model("resnet50v1").layers}
    for expected in (
        "conv1_conv",
        "conv1_bn",
        "pool1_pool",
        "conv2_block1_0_conv",
        "conv2_block1_0_bn",
        "conv2_block1_1_conv",
        "conv5_block3_3_bn",
        "conv5_block3_out",
        "avg_pool",
        "predictions",
    ):
        assert expected in names


def test_fixed_input_shape_like_keras_applications(rng: np.random.Generator) -> None:
    rk = get_backend("keras")
    weights = random_weights(get_spec("resnet50v1"), seed=6)
    dynamic = rk.import_weights(rk.create_model("resnet50v1"), weights)
    fixed = rk.import_weights(rk.create_model("resnet50v1", input_shape=(45, 61, 3)), weights)
    nchw = rk.import_weights(
        rk.create_model("resnet50v1", data_format="channels_first", input_shape=(3, 45, 61)), weights
    )
    assert tuple(fixed.input.shape) == (None, 45, 61, 3) and tuple(nchw.input.shape) == (None, 3, 45, 61)
    x = rng.standard_normal((2, 3, 45, 61)).astype("float32")
    ref = rk.forward_numpy(dynamic, x)["logits"]
    for model in (fixed, nchw):
        out = rk.forward_numpy(model, x)["logits"]
        assert np.abs(out - ref).max() <= tolerance("float32", "cpu", "eval").rel * np.abs(ref).max()
    with pytest.raises(ValueError, match="input_shape must be 3 dims in channels_last order with 3 channels"):
        rk.create_model("resnet18", input_shape=(224, 224, 1))
    with pytest.raises(ValueError, match="input_shape must be 3 dims"):
        rk.create_model("resnet18", input_shape=(224, 224))


def test_global_mixed_policy_is_honoured() -> None:
    """Like keras.applications: create_model() with no dtype follows keras.config's policy."""
    import keras

    rk = get_backend("keras")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = rk.create_model("resnet18")
    finally:
        keras.config.set_dtype_policy(previous)
    conv = model.get_layer("conv1_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert rk.create_model("resnet18").get_layer("conv1_conv").compute_dtype == previous.compute_dtype
    assert keras.config.dtype_policy().name == previous.name
    assert rk.create_model("resnet18", dtype="mixed_float16").get_layer("conv1_conv").compute_dtype == "float16"
    with pytest.raises(ResNetError, match="supported: float32, float64, mixed_bfloat16, mixed_float16"):
        rk.create_model("resnet18", dtype="int8")


def test_every_conv_is_valid_with_explicit_padding() -> None:
    """'same' 3x3 convs run at about half speed in bfloat16 under XLA (bench/keras_padding.py)."""
    import keras

    model = get_backend("keras").create_model("resnext50_32x4d")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.padding == "valid" for layer in convs)


_ONEDNN_OFF = """
import numpy as np
import resnet_keras
from resnet_keras.model import nchw_conv_supported
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights

assert not nchw_conv_supported()  # what an AVX2-only CPU gives: TF's CPU has no NCHW conv without oneDNN
weights = random_weights(get_spec("resnet18"), seed=3)
nhwc = resnet_keras.import_weights(resnet_keras.create_model("resnet18"), weights)
nchw = resnet_keras.import_weights(resnet_keras.create_model("resnet18", data_format="channels_first"), weights)
x = np.random.default_rng(0).standard_normal((2, 3, 45, 61)).astype("float32")
a = resnet_keras.forward_numpy(nhwc, x, features=True)
b = resnet_keras.forward_numpy(nchw, x, features=True)
for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5 * np.abs(a[key]).max())
stage4 = nchw.features_model()(x)["stage4"]
assert tuple(stage4.shape)[1] == 512, stage4.shape  # features come out NCHW, as the model's data_format says
print("ok")
"""


def test_channels_first_works_with_onednn_off() -> None:
    """TensorFlow turns oneDNN off on CPUs without AVX-512 (and with TF_ENABLE_ONEDNN_OPTS=0); its CPU then has
    no NCHW conv. A channels_first model computes in NHWC there and gives the same numbers, on any runner."""
    import os
    import subprocess
    import sys

    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("the TensorFlow backend's CPU path")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", _ONEDNN_OFF], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
