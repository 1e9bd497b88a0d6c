"""Canonical weight export/import for the Keras backend (names and layouts via resnet_spec)."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_spec.naming import from_native, native_table
from resnet_spec.weights import check_weights

FRAMEWORK = "keras"


def native_state(model: ResNet) -> dict[str, keras.Variable]:
    """Variables by native key ``layer/attr`` (keras.applications names: ``conv1_bn/moving_mean``)."""
    state = {}
    for ne in native_table(model.spec, FRAMEWORK):
        layer_name, attr = ne.key.split("/")
        state[ne.key] = getattr(model.get_layer(layer_name), attr)
    return state


def export_weights(model: ResNet) -> dict[str, np.ndarray]:
    """All parameters and BN statistics as ``{canonical_name: array}`` in canonical layouts."""
    state = native_state(model)
    return {
        ne.entry.name: from_native(ne.entry, FRAMEWORK, keras.ops.convert_to_numpy(state[ne.key]))
        for ne in native_table(model.spec, FRAMEWORK)
    }


def import_weights(model: ResNet, weights: Mapping[str, np.ndarray], *, strict: bool = True) -> ResNet:
    """Copy canonical ``weights`` into ``model``; everything is checked before anything changes."""
    native = check_weights(model.spec, FRAMEWORK, weights, strict=strict)
    state = native_state(model)
    for key, array in native.items():
        target = state[key]
        target.assign(np.ascontiguousarray(array).astype(target.dtype, copy=False))
    return model
