"""How a state dict is mapped onto the zoo, as arguments (never ambient state): the map step of the conversion
pipeline, read native -> **map** -> prove -> write -> verify.

A state dict in the zoo's own names maps by rule. One in other names maps by the user's map file, by running the
user's code (``--reference``), or by its structure; what the weights cannot show (``resnet_spec.lookalikes``) is
then settled by the user (``--assume``), by names that decide (:data:`FAMILIES`: timm's resnetv2, Hugging Face),
or by the run, and is otherwise refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MapRequest:
    """What the user gave to map a checkpoint of their own: ``reference`` (FILE.py:CALLABLE, run to map and prove),
    ``map_file`` (a loaded map file, :mod:`mapfile`), ``assume`` (``{look-alike axis: value}``, what the weights
    cannot show), ``draft`` (``resnet map``: an ambiguous structure gives a flagged draft instead of an error)."""

    reference: str | None = None
    map_file: Mapping[str, Any] | None = None
    assume: Mapping[str, str] = field(default_factory=dict)
    draft: bool = False


#: No map file, no code, no assumption: the names or the structure decide, or the file is refused.
PLAIN = MapRequest()


@dataclass(frozen=True)
class Family:
    """A naming whose keys settle what the weights cannot show, because one codebase writes it one way."""

    who: str
    pattern: re.Pattern[str]
    settles: Mapping[str, str]  # look-alike axis -> value
    #: Its top-level modules in forward order: a file whose writer sorted the keys (safetensors) lost the model's
    #: registration order, which mapping by structure follows; this gives it back.
    top: tuple[str, ...] = ()


FAMILIES = (
    # timm/models/resnetv2.py: PreActBottleneck in stages.N.blocks.M, the stride in each stage's first block, its
    # stem pool nn.MaxPool2d(3, 2, padding=1); its bottleneck strides on the 3x3 conv.
    Family(
        "timm's resnetv2 (stages.N.blocks.M.norm1)",
        re.compile(r"^stages\.\d+\.blocks\.\d+\.norm1\."),
        {"stride_block": "first", "pool_pad": "neg_inf", "stride_on": "conv3x3"},
        ("stem.", "stages.", "norm.", "head."),
    ),
    # timm/models/resnet.py with avg_down=True (resnet*d): downsample = Sequential(AvgPool2d(2, 2, ceil_mode=True,
    # count_include_pad=False), conv, norm), so the shortcut's BN is downsample.2; its bottleneck strides on the 3x3.
    Family(
        "timm's resnet*d (layerN.M.downsample.2: an average pool before the shortcut conv)",
        re.compile(r"^layer\d+\.\d+\.downsample\.2\."),
        {"downsample": "avg_pool", "stride_on": "conv3x3", "derived": "he2016"},
        ("conv1.", "bn1.", "layer", "fc."),
    ),
    # transformers/models/resnet: ResNetBottleNeckLayer strides on the 3x3 conv (downsample_in_bottleneck=False,
    # the default of every published checkpoint).
    Family(
        "Hugging Face transformers' ResNet (encoder.stages.N.layers.M)",
        re.compile(r"^(resnet\.)?encoder\.stages\.\d+\.layers\.\d+\."),
        {"stride_on": "conv3x3"},
        ("resnet.embedder.", "embedder.", "resnet.encoder.", "encoder.", "classifier."),
    ),
)


def family_of(keys: Iterable[str]) -> Family | None:
    """The naming the keys follow, where it is one that decides (None: no family known)."""
    keys = list(keys)
    return next((f for f in FAMILIES if any(f.pattern.search(k) for k in keys)), None)
