"""Tensors that stay in their file until a writer needs them, so a conversion holds about one copy of a
checkpoint, not two or three: readers give a :class:`LazyArray` per tensor (shape and dtype known, data
read again on every ``np.asarray``, never cached), layout transforms chain onto it, and a writer turns
them into bytes one at a time."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


class LazyArray:
    """A tensor in a file: ``shape``, ``dtype`` and ``ndim`` without reading it; ``np.asarray`` reads it."""

    __slots__ = ("_load", "dtype", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: Any, load: Callable[[], np.ndarray]) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self._load = load

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self._load()
        return array if dtype is None else array.astype(dtype, copy=False)

    def then(self, transform: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> LazyArray:
        """The same tensor after a layout ``transform`` (applied when read)."""
        load = self._load
        return LazyArray(shape, self.dtype, lambda: transform(load()))

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype})"


def apply(value: Any, transform: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> Any:
    """``transform`` now for an array, on read for a :class:`LazyArray`."""
    if isinstance(value, LazyArray):
        return value.then(transform, shape)
    return transform(np.asarray(value))


def materialize(weights: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every tensor read into memory (the readers' lazy tensors released one by one)."""
    return {k: np.asarray(v) for k, v in weights.items()}


def dtype_of(value: Any) -> np.dtype[Any]:
    """A tensor's dtype without reading a lazy one."""
    return value.dtype if isinstance(value, (LazyArray, np.ndarray)) else np.asarray(value).dtype


def counting_nonfinite(weights: Mapping[str, Any], found: dict[str, int]) -> dict[str, Any]:
    """``weights`` whose floating tensors record their NaN/inf count in ``found`` (name -> count, only
    when non-zero) as they are read: a conversion checks each tensor on its one pass out of the file.
    Arrays already in memory are checked now."""

    def check(name: str, array: np.ndarray) -> np.ndarray:
        if array.dtype.kind == "f":
            n = int(array.size - np.count_nonzero(np.isfinite(array)))
            if n:
                found[name] = n
        return array

    out: dict[str, Any] = {}
    for name, value in weights.items():
        if isinstance(value, LazyArray):
            out[name] = value.then(functools.partial(check, name), value.shape)
        else:
            out[name] = check(name, np.asarray(value))
    return out
