"""Canonical weight export/import for the PyTorch backend (names and layouts via resnet_spec)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from resnet_spec.naming import TORCH_BN_COUNTER, from_native, native_table
from resnet_spec.weights import check_weights
from resnet_torch.model import ResNet

FRAMEWORK = "torch"
# torch-only buffer, not part of the canonical table: skipped on export, left untouched on import.
EXTRA_BUFFERS = (TORCH_BN_COUNTER,)


def native_state(model: ResNet) -> dict[str, torch.Tensor]:
    """Parameters and BN statistics by native key (``num_batches_tracked`` excluded)."""
    return {k: v for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] not in EXTRA_BUFFERS}


def export_weights(model: ResNet) -> dict[str, np.ndarray]:
    """All parameters and BN statistics as ``{canonical_name: array}`` in canonical layouts."""
    state = native_state(model)
    return {
        ne.entry.name: from_native(ne.entry, FRAMEWORK, state[ne.key].detach().cpu().numpy())
        for ne in native_table(model.spec, FRAMEWORK)
    }


def import_weights(model: ResNet, weights: Mapping[str, np.ndarray], *, strict: bool = True) -> ResNet:
    """Copy canonical ``weights`` into ``model``; everything is checked before anything changes."""
    native = check_weights(model.spec, FRAMEWORK, weights, strict=strict)
    state = native_state(model)
    with torch.no_grad():
        for key, array in native.items():
            target = state[key]
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(target.dtype))
    return model
