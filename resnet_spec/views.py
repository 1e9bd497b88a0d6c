"""How a framework's layer presents itself in torch's view (names and layouts), for the backends whose ``foreign``
module reads a hand-written model as torch names it (Keras, Flax): from the ``Conventions`` records, so the names
and layout transforms have one home. And :class:`Value`, one array a watched layer read or wrote."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resnet_spec import layouts
from resnet_spec.frameworks import Transform, conventions

#: The kinds of weight layers, in the order each backend's ``foreign.LAYER_TYPES`` names its classes.
KINDS = ("conv", "bn", "fc")


@dataclass(frozen=True)
class ViewedAttr:
    """One variable of a layer: its native name, torch's, and the layout transforms both ways."""

    native: str
    torch: str
    to_torch: Transform
    to_native: Transform


def torch_view(framework: str, layer_types: tuple[str, ...]) -> dict[str, tuple[ViewedAttr, ...]]:
    """Layer class name (``layer_types``: conv, BN and Linear classes, in :data:`KINDS`' order) -> its variables as
    torch names and lays them out (``Conventions.attrs``, ``from_native``, ``to_native``)."""
    c = conventions(framework)
    return {
        cls: tuple(
            ViewedAttr(native, canonical, c.from_native.get((kind, canonical), layouts.identity),
                       c.to_native.get((kind, canonical), layouts.identity))
            for canonical, native in c.attrs[kind].items()
        )
        for cls, kind in zip(layer_types, KINDS, strict=True)
    }  # fmt: skip


@dataclass(eq=False)
class Value:
    """One array of a watched pass, NCHW: the same object wherever that array is read (identity = the array)."""

    array: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)
