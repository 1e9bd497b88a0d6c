"""How far one tensor is from a reference: the one measure parity, conversion checks and reports use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resnet_spec.errors import ResNetError


@dataclass
class TensorDiff:
    """How far one tensor of the target is from the reference."""

    max_abs: float
    max_rel: float  # max_abs / max |reference|
    cosine: float
    rel_l2: float = 0.0  # ||target - reference|| / ||reference||


def tensor_diff(ref: np.ndarray, out: np.ndarray) -> TensorDiff:
    """Max abs, max abs relative to the reference's magnitude, cosine similarity (in float64)."""
    if ref.shape != out.shape:
        raise ResNetError(f"shape mismatch: reference {list(ref.shape)} vs target {list(out.shape)}")
    r, o = ref.astype(np.float64).ravel(), out.astype(np.float64).ravel()
    max_abs = float(np.abs(r - o).max()) if r.size else 0.0
    scale = float(np.abs(r).max()) if r.size else 0.0
    denom = float(np.linalg.norm(r) * np.linalg.norm(o))
    cosine = float(r @ o / denom) if denom > 0 else float(np.array_equal(r, o))
    norm = float(np.linalg.norm(r))
    rel_l2 = float(np.linalg.norm(r - o)) / norm if norm > 0 else float(np.linalg.norm(r - o))
    return TensorDiff(max_abs, max_abs / scale if scale > 0 else max_abs, cosine, rel_l2)


def within(diff: TensorDiff, tol: float) -> bool:
    """At or below the tolerance. NaN and inf never pass (``NaN > tol`` is False, so test ``<=``)."""
    return bool(np.isfinite(diff.max_rel) and diff.max_rel <= tol)
