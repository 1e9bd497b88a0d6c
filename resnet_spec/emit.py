"""What a generated model file (``resnet convert --emit-code``) holds, framework-free: the spec's architecture as
plain data, block by block, and the header that says what it is and how it loads. Each backend's ``emit.py``
writes the rest in its framework's idiom around this data (no import of this project in the file it writes).
"""

from __future__ import annotations

import keyword
import pprint
import re
from typing import Any

from resnet_spec.errors import SpecError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.plan import ConvPlan, channel_padding, feature_channels, plan_stages, stem_convs


def _conv(c: ConvPlan) -> list[Any]:
    return [c.in_channels, c.out_channels, c.kernel, c.stride, c.dilation, c.groups, c.bias]


def architecture(spec: ModelSpec) -> dict[str, Any]:
    """The model as data: the stem, every block (its convs as [in, out, kernel, stride, dilation, groups, bias],
    its shortcut and where it is strided), the head; BN eps and momentum (torch's convention: the new batch's
    weight)."""
    if spec.padding != "symmetric":  # the file's convs pad k // 2 on every side: refused, never written wrong
        raise SpecError(
            f"--emit-code writes no model with padding={spec.padding!r} (TensorFlow's SAME, Flax's examples/imagenet) "
            "yet; convert without it and build the model with resnet-xf: create_model(..., padding='same')"
        )
    blocks = []
    for stage in plan_stages(spec):
        for b in stage:
            sc = b.shortcut_conv
            blocks.append(
                {
                    "name": f"layer{b.stage}.{b.index}",
                    "convs": [_conv(c) for c in b.convs],
                    "shortcut": b.shortcut,  # identity | conv_bn | conv | pool | zero_pad
                    "shortcut_conv": _conv(sc) if sc is not None else None,
                    "stride": b.stride,
                    "shortcut_pool": b.shortcut_pool,  # ResNet-D: a 2x2 average pool before the shortcut's conv
                    "zero_pad": list(channel_padding(spec, b)) if b.shortcut == "zero_pad" else None,
                }
            )
    st = spec.stem
    return {
        # "deep": a deep stem's convs before its last, each with BN + ReLU ([] for one conv); "conv": the last one
        "stem": {
            "deep": [_conv(c) for c in stem_convs(spec)[:-1]],
            "conv": _conv(stem_convs(spec)[-1]),
            "norm": st.norm,
            "relu": st.relu,
            "pool": st.pool,
            "pool_pad": st.pool_pad,
        },
        "stages": len(spec.depths),
        "preact": spec.preact,
        "post_norm": spec.post_norm,
        "bn_eps": spec.bn_eps,
        "bn_momentum": spec.bn_momentum,
        "features": feature_channels(spec),
        "num_classes": spec.num_classes,
        "blocks": blocks,
    }


def literal(value: Any) -> str:
    """A Python literal of plain data, wrapped to fit 120 columns."""
    return pprint.pformat(value, width=116, sort_dicts=False, compact=True)


def function_name(spec: ModelSpec) -> str:
    """The builder's name in the generated file: the model's name as an identifier."""
    name = re.sub(r"\W", "_", spec.name)
    return f"model_{name}" if not name.isidentifier() or keyword.iskeyword(name) else name


def header(spec: ModelSpec, framework: str, load: str, assumptions: list[str]) -> str:
    """The module docstring: what the file is, how to build and load it, what the architecture takes as given."""
    options = spec.options_text(skip=("num_classes", "in_channels"))
    said = "".join(f"\n- {a}" for a in assumptions)
    return (
        f'"""{spec.name}{f" ({options})" if options else ""} in {framework}: a standalone model file written by '
        f"`resnet convert --emit-code`.\nNothing here imports resnet-xf: the architecture is the data below, block "
        f"by block.\n\n{load}\n"
        + (f"\nWhat the conversion took as given (the weights cannot show it):{said}\n" if said else "")
        + '"""'
    )
