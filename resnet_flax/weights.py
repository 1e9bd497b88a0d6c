"""Canonical weight export/import for the Flax backend (names and layouts via resnet_spec)."""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from resnet_flax.model import ResNet
from resnet_spec.naming import from_native, native_table
from resnet_spec.weights import check_weights

FRAMEWORK = "flax"


def state_key(path: tuple) -> str:
    """An ``nnx.State`` path as a native key: ``ResNetBlock_0/BatchNorm_0/mean`` (Flax example's paths)."""
    return "/".join(str(p) for p in path)


def native_state(model: nnx.Module) -> dict[str, nnx.Variable]:
    """A model's variables (parameters and BN statistics) by native key (its state path: ours, or a user's)."""
    return {state_key(path): var for path, var in nnx.graph.iter_graph(model) if isinstance(var, nnx.Variable)}


def export_weights(model: ResNet) -> dict[str, np.ndarray]:
    """All parameters and BN statistics as ``{canonical_name: array}`` in canonical layouts."""
    state = native_state(model)
    return {
        ne.entry.name: from_native(ne.entry, FRAMEWORK, np.asarray(state[ne.key].get_value()))
        for ne in native_table(model.spec, FRAMEWORK)
    }


def import_weights(model: ResNet, weights: Mapping[str, np.ndarray], *, strict: bool = True) -> ResNet:
    """Copy canonical ``weights`` into ``model``; everything is checked before anything changes."""
    native = check_weights(model.spec, FRAMEWORK, weights, strict=strict)
    state = native_state(model)
    for key, array in native.items():
        var = state[key]
        var.set_value(jnp.asarray(np.ascontiguousarray(array), dtype=var.get_value().dtype))
    return model
