"""Framework-free checks shared by every backend's ``import_weights``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from resnet_spec.errors import WeightsError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.naming import NativeEntry, native_table, to_native

_MAX_LISTED = 12


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = f" ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"{title} ({len(items)}): " + ", ".join(shown) + more


def validate_weights(
    spec: ModelSpec, framework: str, weights: Mapping[str, np.ndarray], *, strict: bool = True
) -> list[NativeEntry]:
    """Check canonical ``weights`` against ``spec``; return the table entries they fill, in module order.

    Every problem is collected first (missing and unexpected keys when ``strict``, shape mismatches
    and non-float dtypes always) and raised as one WeightsError naming canonical and native keys.
    """
    table = native_table(spec, framework)
    by_name = {ne.entry.name: ne for ne in table}
    missing = [f"{n} ({by_name[n].key})" for n in by_name if n not in weights]
    unexpected = [n for n in weights if n not in by_name]
    bad_shape, bad_dtype = [], []
    for name, value in weights.items():
        if name not in by_name:
            continue
        # shape and dtype without reading: a tensor still in its file (a lazy array) carries both
        shape = tuple(np.shape(value))
        dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
        ne = by_name[name]
        if shape != ne.entry.shape:
            bad_shape.append(f"{name} ({ne.key}): expected {list(ne.entry.shape)}, got {list(shape)}")
        if dtype.kind != "f":
            bad_dtype.append(f"{name} ({ne.key}): {dtype} is not a floating-point type")
    problems = []
    if strict and missing:
        problems.append(_listing("missing keys", missing))
    if strict and unexpected:
        problems.append(_listing("unexpected keys", unexpected))
    if bad_shape:
        problems.append(_listing("shape mismatches", bad_shape))
    if bad_dtype:
        problems.append(_listing("bad dtypes", bad_dtype))
    if problems:
        raise WeightsError(f"weights do not fit {spec.name} ({framework}): " + "; ".join(problems))
    return [ne for ne in table if ne.entry.name in weights]


def check_weights(
    spec: ModelSpec, framework: str, weights: Mapping[str, np.ndarray], *, strict: bool = True, copy: bool = True
) -> dict[str, np.ndarray]:
    """Validate (see :func:`validate_weights`), then return ``{native_key: array}`` in module order;
    nothing is converted before the whole dict is known to fit. ``copy=False``: tensors whose layout
    is unchanged are the caller's arrays (file writers: one copy of a checkpoint in memory, not two)."""
    entries = validate_weights(spec, framework, weights, strict=strict)
    return {ne.key: to_native(ne.entry, framework, np.asarray(weights[ne.entry.name]), copy=copy) for ne in entries}
