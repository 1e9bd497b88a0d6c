"""Named layout transforms between frameworks. No other module transposes a weight.

All functions return NEW C-contiguous arrays, never views: an exported weight must not change when
the framework later updates its parameter in place (an optimizer step).
"""

from __future__ import annotations

import numpy as np


# --8<-- [start:layouts]
def oihw_to_hwio(kernel: np.ndarray) -> np.ndarray:
    """Conv kernel torch/paddle [out, in/groups, kh, kw] -> keras [kh, kw, in/groups, out]."""
    return np.array(np.transpose(kernel, (2, 3, 1, 0)), order="C", copy=True)


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """Conv kernel keras [kh, kw, in/groups, out] -> torch/paddle [out, in/groups, kh, kw]."""
    return np.array(np.transpose(kernel, (3, 2, 0, 1)), order="C", copy=True)


def linear_out_in_to_in_out(weight: np.ndarray) -> np.ndarray:
    """Linear weight torch [out, in] -> paddle nn.Linear / keras Dense [in, out]."""
    return np.array(weight.T, order="C", copy=True)


# --8<-- [end:layouts]


def linear_in_out_to_out_in(weight: np.ndarray) -> np.ndarray:
    """Linear weight paddle / keras [in, out] -> torch [out, in]."""
    return np.array(weight.T, order="C", copy=True)


def identity(array: np.ndarray) -> np.ndarray:
    """Same layout in both frameworks (biases, BN vectors, torch<->paddle conv kernels)."""
    return np.array(array, order="C", copy=True)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """Activations [N, C, H, W] -> [N, H, W, C]."""
    return np.array(np.transpose(x, (0, 2, 3, 1)), order="C", copy=True)


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """Activations [N, H, W, C] -> [N, C, H, W]."""
    return np.array(np.transpose(x, (0, 3, 1, 2)), order="C", copy=True)
