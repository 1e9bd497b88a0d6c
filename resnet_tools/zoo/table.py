"""The zoo as rows (for ``resnet list`` and the docs' generated table)."""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec import count_macs, count_params, feature_shapes, get_spec, list_models
from resnet_spec.plan import inner_width

FAMILIES = {"v1.5": "torchvision (v1.5)", "v1": "keras.applications V1", "v2": "pre-activation V2"}


@dataclass(frozen=True)
class ZooRow:
    name: str
    family: str
    block: str
    depths: str
    widths: str
    groups: int
    trainable: int
    bn_stats: int
    gmacs: float
    stage_shapes: str


def zoo_rows(size: int = 224) -> list[ZooRow]:
    """One row per model, every figure computed from the spec."""
    rows = []
    for name in list_models():
        s = get_spec(name)
        trainable, bn_stats = count_params(s)
        shapes = feature_shapes(s, size, size)
        rows.append(
            ZooRow(
                name=name,
                family=FAMILIES[s.variant],
                block=s.block,
                depths="-".join(map(str, s.depths)),
                widths="-".join(str(inner_width(s, w)) for w in s.widths),
                groups=s.groups,
                trainable=trainable,
                bn_stats=bn_stats,
                gmacs=count_macs(s, size, size) / 1e9,
                stage_shapes=" ".join("x".join(map(str, shapes[k])) for k in list(shapes)[1:]),
            )
        )
    return rows
