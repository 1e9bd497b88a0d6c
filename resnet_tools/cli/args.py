"""Argument values shared by several commands, parsed once: model lists, input shapes, devices."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TypeAlias

from resnet_spec import list_models
from resnet_spec.spec import unknown_model_message
from resnet_tools.checkpoints.request import MapRequest
from resnet_tools.core.backends import Backend
from resnet_tools.core.errors import UsageError

DEVICES = ("cpu", "gpu", "auto")
WEIGHTS_HELP = (
    "a checkpoint file, an official id from `resnet zoo` (torchvision:resnet50.IMAGENET1K_V2, "
    "paddle:resnet50, keras:resnet50v2; downloaded and verified on first use), or an https:// URL with --sha256"
)
#: What ``add_subparsers()`` returns; each command module registers itself on it.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


MAP_HELP = "a map file from `resnet map --save` (your own ResNet's module paths -> the zoo's)"
REFERENCE_HELP = (
    "your model's code, FILE.py:CALLABLE (torch nn.Module, paddle Layer or functional keras.Model, built with no "
    "arguments): the "
    "checkpoint is mapped by running it, and the conversion proved against it (this runs your file)"
)


ASSUME_HELP = (
    "what the weights cannot show, in your words when your code is not at hand: stride_on=conv3x3|conv1x1 "
    "(bottleneck: v1.5 or v1), stride_block=last|first (pre-activation: keras.applications or timm), "
    "pool_pad=zero|neg_inf (a stem max-pool right after the conv); repeat or comma-separate"
)


def add_checkpoint_options(p: argparse.ArgumentParser, *, fmt: bool = True, reference: bool = False) -> None:
    """``--format`` (the checkpoint's format, when its extension does not say), ``--map`` (a map file),
    ``--assume`` (what the weights cannot show) and, where asked, ``--reference`` (the user's code)."""
    from resnet_tools.checkpoints.formats import FORMATS

    if fmt:
        p.add_argument("--format", choices=list(FORMATS), default=None, help="the checkpoint's format")
    p.add_argument("--map", default=None, metavar="MAP.yaml", help=MAP_HELP)
    p.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE", help=ASSUME_HELP)
    if reference:
        p.add_argument("--reference", default=None, metavar="FILE.py:CALLABLE", help=REFERENCE_HELP)


def map_request(args: argparse.Namespace) -> MapRequest:
    """How the command's checkpoint is mapped, from ``--reference``, ``--map`` and ``--assume`` (checked here:
    one line naming the bad value)."""
    from resnet_spec.lookalikes import check_assumptions
    from resnet_tools.checkpoints import mapfile

    assume: dict[str, str] = {}
    for item in (part.strip() for text in getattr(args, "assume", []) for part in text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--assume {item!r}: give KEY=VALUE, e.g. stride_on=conv3x3")
        assume[key.strip()] = value.strip()
    path = getattr(args, "map", None)
    return MapRequest(
        reference=getattr(args, "reference", None),
        map_file=mapfile.load(path) if path else None,
        assume=check_assumptions(assume),
    )


def parse_models(text: str) -> list[str]:
    """``"resnet18,resnet50"`` or ``"all"`` -> zoo names; an unknown one names the closest."""
    if text == "all":
        return list_models()
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError(
            f"--models names no model; give comma-separated names or 'all' (known: {', '.join(list_models())})"
        )
    for n in names:
        if n not in list_models():
            raise UsageError(unknown_model_message(n))
    return names


def parse_input_shape(text: str) -> tuple[int, int, int, int]:
    """``2x3x224x224`` -> (2, 3, 224, 224), NCHW."""
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise UsageError(f"--input must be NxCxHxW with positive integers, e.g. 2x3x224x224; got {text!r}")
    return dims[0], dims[1], dims[2], dims[3]


def parse_ints(flag: str, text: str, *, low: int) -> list[int]:
    """``"1,16"`` -> [1, 16], each at least ``low``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < low:
        raise UsageError(f"{flag} must be at least {low}, got {', '.join(map(str, values)) or 'nothing'}")
    return values


def resolve_device(requested: str, modules: Mapping[str, Backend], *, needed: int = 1) -> str:
    """``cpu``/``gpu``/``auto`` -> ``cpu`` or ``gpu``: ``gpu`` needs ``needed`` backends with a GPU build,
    ``auto`` picks the GPU when they exist."""
    if requested == "cpu":
        return "cpu"
    with_gpu = [b for b, m in modules.items() if m.gpu_available()]
    if requested == "auto":
        return "gpu" if len(with_gpu) >= needed else "cpu"
    if len(with_gpu) < needed:
        raise UsageError(
            f"--device gpu needs {needed} backend(s) with a GPU build; with GPU: {', '.join(with_gpu) or 'none'}"
        )
    return "gpu"
