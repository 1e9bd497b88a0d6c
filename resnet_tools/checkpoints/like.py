"""``resnet convert --like TEMPLATE``: write weights in the naming, layout, dtype and wrapper of a checkpoint the
user already has, so that their own code loads it strictly (``load_state_dict(strict=True)``, or paddle's
``set_state_dict`` with nothing missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import TORCH_BN_COUNTER, to_native
from resnet_spec.params import canonical_table
from resnet_tools.checkpoints.formats import FORMATS, Checkpoint, Container
from resnet_tools.checkpoints.lazy import dtype_of


def native_like(weights: dict[str, Any], spec: ModelSpec, template: Checkpoint) -> tuple[str, Any]:
    """(framework, the object to save): ``weights`` under the template's keys, layouts, dtypes and wrappers."""
    mapping, container = template.mapping, template.container
    if mapping is None or not isinstance(container, Container):
        raise CheckpointError("--like takes a torch or paddle checkpoint as the template")
    table = {e.name: e for e in canonical_table(spec)}
    state: dict[str, Any] = {}
    for module, unit in sorted(mapping.units.items(), key=lambda item: item[1].order):
        for attr, key in unit.keys.items():
            name = f"{module}.{attr}"
            like = template.weights.get(name)
            dtype = dtype_of(like) if like is not None else np.dtype("float32")
            if name in table:
                array = to_native(table[name], mapping.framework, np.asarray(weights[name]))
            else:  # a bias the template's model has and the zoo's does not: zero, as it was read
                array = np.zeros(unit.shape[:1], dtype=dtype)
            state[container.prefix + key] = array.astype(dtype, copy=False)
        bias = f"{module}.bias"
        if bias in table and "bias" not in unit.keys and np.any(np.asarray(weights[bias]) != 0):
            raise CheckpointError(f"{bias} is not zero, and the template's {unit.path} has no bias to hold it")
        if unit.kind == "bn" and container.counters:  # torch's BN batch counter, where the template has them
            state[f"{container.prefix}{unit.path}.{TORCH_BN_COUNTER}"] = np.zeros((), dtype=np.int64)
    obj: Any = state
    for key in reversed(container.trail):
        obj = {key: obj}
    return mapping.framework, obj


def write_like(weights: dict[str, Any], spec: ModelSpec, template: Checkpoint, path: Path) -> None:
    """Write ``weights`` to ``path`` the way ``template`` is written (see :func:`native_like`)."""
    framework, obj = native_like(weights, spec, template)
    fmt = next(f for f in FORMATS.values() if f.framework == framework and f.write_state is not None)
    assert fmt.write_state is not None
    fmt.write_state(obj, path)
