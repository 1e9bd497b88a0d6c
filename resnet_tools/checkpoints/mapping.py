"""The map step of the conversion pipeline (read native -> **map** -> prove -> write -> verify): a state dict as a
reader found it -> canonical weights, the model they are for, and how that was decided. Its inputs are its
arguments (:class:`MapRequest`); nothing is read from ambient state.

In order: the user's code (``--reference``: mapped by running it, the look-alike proved); the user's map file
(``--map``); the zoo's naming rules where every key follows them (the names decide); else the structure, where what
the weights cannot show must be settled by names that decide or by ``--assume``, or the file is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.naming import TORCH_BN_COUNTER, canonical_entry_from_native
from resnet_tools.checkpoints import mapfile, reference, structure
from resnet_tools.checkpoints.formats.base import weights_from_native
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.checkpoints.structure import StructureMap


def follows_zoo_names(native: Mapping[str, Any], framework: str) -> str | None:
    """None when every key follows the zoo's naming rules for ``framework``; else the first one that does not."""
    for key, value in native.items():
        if key.endswith(TORCH_BN_COUNTER):
            continue
        try:
            canonical_entry_from_native(key, framework, tuple(np.shape(value)))
        except ValueError as exc:
            return str(exc).split(": ", 1)[-1]
    return None


def map_state(
    native: dict[str, Any],
    framework: str,
    path: Path,
    model: str | None,
    how: MapRequest = PLAIN,
    *,
    ordered: bool = True,
    reader: Any = None,
) -> tuple[dict[str, Any], ModelSpec | None, list[str], StructureMap | None]:
    """(canonical weights, the spec when the mapping decides it, notes, the module mapping) of a state dict
    (``ordered``: its keys in the model's registration order, see ``structure.structural_map``; ``reader``: the
    user's model that read the file, which ``--reference`` runs)."""
    source = str(path)
    if how.reference is not None:  # the user's own model decides, by running it, and proves the result
        mapping = reference.reference_map(native, framework, model, how.reference, source, how.assume, reader)
        weights = dict(structure.canonical_weights(mapping, native))
        mapping = reference.choose_by_proof(mapping, weights)
        return weights, mapping.spec, mapping.notes, mapping
    if how.map_file is not None:
        mapping = mapfile.apply(how.map_file, native, framework, source)
        return dict(structure.canonical_weights(mapping, native)), mapping.spec, mapping.notes, mapping
    unknown = follows_zoo_names(native, framework)
    if unknown is not None:
        mapping = structure.structural_map(
            native, framework, model, source, draft=how.draft, assume=how.assume, ordered=ordered
        )
        spec = mapping.spec
        assert spec is not None
        note = f"a ResNet of its own naming (first unknown: {unknown}) mapped by structure onto {spec.name}"
        return dict(structure.canonical_weights(mapping, native)), spec, [note, *mapping.notes], mapping
    units = structure.units_of(native, framework)
    return weights_from_native(native, framework, path), None, [], structure.by_name(units, framework)
