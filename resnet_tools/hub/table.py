"""Rows of ``resnet zoo``: each official checkpoint with its model, published accuracy, size and cache state."""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec.official import official_weights
from resnet_spec.params import count_params
from resnet_tools.hub.cache import cached_path

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class WeightsRow:
    id: str
    model: str
    format: str
    top1: float | None
    top5: float | None
    preprocessing: str
    megabytes: float  # the cached file's size, or the float32 tensors' size when not cached
    cached: bool


def weights_rows(source: str | None = None) -> list[WeightsRow]:
    rows = []
    for w in official_weights().values():
        if source is not None and w.source != source:
            continue
        path = cached_path(w)
        cached = path.is_file()
        size = path.stat().st_size if cached else FLOAT32_BYTES * sum(count_params(w.spec()))
        rows.append(WeightsRow(w.id, w.model, w.format, w.top1, w.top5, w.preprocessing, size / 1e6, cached))
    return rows
