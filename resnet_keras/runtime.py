"""Numpy-in, numpy-out helpers for tooling and tests (Keras). Activations are NCHW at this boundary."""

from __future__ import annotations

import keras
import numpy as np

from resnet_keras.model import ResNet, feature_layer_names
from resnet_spec.layouts import nchw_to_nhwc, nhwc_to_nchw


def _probe(model: ResNet) -> keras.Model:
    """A model sharing ``model``'s layers that returns logits and every feature map (cached)."""
    if getattr(model, "_probe_model", None) is None:
        outputs = {k: model.get_layer(v).output for k, v in feature_layer_names(model.spec).items()}
        outputs["logits"] = model.outputs[0]
        object.__setattr__(model, "_probe_model", keras.Model(model.input, outputs))  # untracked: no weight copy
    return model._probe_model


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu"
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked.

    ``device`` is informational: Keras places work on its backend's default device.
    """
    channels_last = model.data_format == "channels_last"
    inp = nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x)
    if not features:
        return {"logits": keras.ops.convert_to_numpy(model(inp, training=False))}
    out = {k: keras.ops.convert_to_numpy(v) for k, v in _probe(model)(inp, training=False).items()}
    return {k: (nhwc_to_nchw(v) if channels_last and v.ndim == 4 else v) for k, v in out.items()}


def param_counts(model: ResNet) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) as the framework counts them."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def native_shapes(model: ResNet) -> dict[str, tuple[int, ...]]:
    """Every variable of the model by ``layer/attr`` key with its shape."""
    return {f"{layer.name}/{w.name}": tuple(w.shape) for layer in model.layers for w in layer.weights}
