"""Canonical weight export/import for the PaddlePaddle backend (names and layouts via resnet_spec)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_spec.naming import from_native, native_table
from resnet_spec.weights import check_weights

FRAMEWORK = "paddle"


def native_state(model: ResNet) -> dict[str, paddle.Tensor]:
    """Parameters and BN statistics by native key (paddle.vision names: ``bn1._mean``)."""
    return dict(model.state_dict())


def export_weights(model: ResNet) -> dict[str, np.ndarray]:
    """All parameters and BN statistics as ``{canonical_name: array}`` in canonical layouts."""
    state = native_state(model)
    return {
        ne.entry.name: from_native(ne.entry, FRAMEWORK, state[ne.key].numpy())
        for ne in native_table(model.spec, FRAMEWORK)
    }


def import_weights(model: ResNet, weights: Mapping[str, np.ndarray], *, strict: bool = True) -> ResNet:
    """Copy canonical ``weights`` into ``model``; everything is checked before anything changes."""
    native = check_weights(model.spec, FRAMEWORK, weights, strict=strict)
    state = native_state(model)
    with paddle.no_grad():
        for key, array in native.items():
            target = state[key]
            target.set_value(np.ascontiguousarray(array).astype(target.numpy().dtype, copy=False))
    return model
