"""``resnet summary``: a per-layer table like ``paddle.summary``, the same content for every backend.

Rows come from the spec (canonical modules, geometry, parameter table), so the torch, paddle and
keras tables line up row by row; the backend's own model is built and checked against the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec import ModelSpec, canonical_table, count_macs
from resnet_spec.errors import ResNetError
from resnet_spec.naming import module_kind, native_module
from resnet_spec.shapes import logits_shape, module_shapes
from resnet_tools.core.backends import load_backend

#: The largest side of the input the backend's model is run on to check the computed table.
VERIFY_MAX_SIDE = 256
LAYER_TYPES = {"conv": "Conv2D", "bn": "BatchNorm", "fc": "Linear"}


@dataclass(frozen=True)
class SummaryRow:
    layer: str  # canonical module name
    native: str  # the backend's name for it
    kind: str
    output_shape: tuple[int, ...]  # with the batch dimension, NCHW
    trainable: int
    non_trainable: int


@dataclass(frozen=True)
class Summary:
    spec: ModelSpec
    backend: str
    input_shape: tuple[int, int, int, int]
    rows: list[SummaryRow]
    trainable: int
    non_trainable: int
    macs: int
    output_shape: tuple[int, ...]


def summarize(spec: ModelSpec, backend: str, input_shape: tuple[int, int, int, int], verify: bool = True) -> Summary:
    """Rows and totals for ``spec``; with ``verify``, build the backend's model and check counts and output."""
    n, _c, h, w = input_shape
    shapes = module_shapes(spec, h, w)
    sizes: dict[str, list[int]] = {m: [0, 0] for m in shapes}
    for e in canonical_table(spec):
        size = 1
        for d in e.shape:
            size *= d
        sizes[e.module][0 if e.trainable else 1] += size
    rows = [
        SummaryRow(m, native_module(m, backend, spec), LAYER_TYPES[module_kind(m)], (n, *shape), *sizes[m])
        for m, shape in shapes.items()
    ]
    trainable = sum(r.trainable for r in rows)
    non_trainable = sum(r.non_trainable for r in rows)
    out_shape = logits_shape(spec, n)
    if verify:
        import numpy as np

        mod = load_backend(backend)
        model = mod.create_model(spec)
        if mod.param_counts(model) != (trainable, non_trainable):
            raise ResNetError(
                f"{backend} model has {mod.param_counts(model)} parameters, the spec says {(trainable, non_trainable)}"
            )
        # The table is computed, not measured: a capped batch checks the output shape without allocating
        # what a huge --input would need (1x3x100000x100000 is 112 GiB of input alone).
        probe = (min(n, 2), input_shape[1], min(h, VERIFY_MAX_SIDE), min(w, VERIFY_MAX_SIDE))
        got = mod.forward_numpy(model, np.zeros(probe, "float32"))["logits"].shape
        if tuple(got) != logits_shape(spec, probe[0]):
            raise ResNetError(f"{backend} model output {got}, the spec says {out_shape}")
    return Summary(spec, backend, input_shape, rows, trainable, non_trainable, count_macs(spec, h, w), out_shape)
