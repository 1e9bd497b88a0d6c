"""Every backend's ``builders.py``, generated from the YAML (``make builders``; a test fails when a file
differs from what this writes, so a builder can never drift from ``resnets.yaml``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypedDict

from resnet_spec.spec import list_models

#: Each backend's title in the docstring and the TypedDict its builders take (``create_model``'s options).
BACKENDS = {
    "torch": ("PyTorch", "resnet_spec.codegen", "ModelOptions"),
    "paddle": ("PaddlePaddle", "resnet_spec.codegen", "ModelOptions"),
    "keras": ("Keras 3", "resnet_keras.model", "KerasOptions"),
    "flax": ("Flax NNX", "resnet_spec.codegen", "ModelOptions"),
}


class ModelOptions(TypedDict, total=False):
    """What ``create_model`` and every builder take besides the name (``resnet_spec.spec.OVERRIDES``, dtype)."""

    num_classes: int | None
    dtype: str
    zero_init_residual: bool
    replace_stride_with_dilation: list[bool] | tuple[bool, bool, bool]
    stem: str
    in_channels: int
    conv_bias: bool
    shortcut: str


def builders_source(framework: str) -> str:
    """The text of ``resnet_<framework>/builders.py``: one typed builder per zoo model, in the YAML's order."""
    title, options_module, options = BACKENDS[framework]
    package = f"resnet_{framework}"
    imports = f"from {package}.model import ResNet, create_model\n"
    if options_module == f"{package}.model":
        imports = f"from {package}.model import {options}, ResNet, create_model\n"
    else:
        imports = "".join(sorted([f"from {options_module} import {options}\n", imports]))
    parts = [
        f'"""One builder per zoo model ({title}), as torchvision and keras.applications name them.\n\n'
        "Generated from ``resnet_spec/resnets.yaml`` by ``make builders`` (``resnet_spec/codegen.py``); a test fails\n"
        f'when this file differs. Options as in :func:`create_model`, typed by ``{options}``."""\n\n'
        "from __future__ import annotations\n\n"
        "from typing import Unpack\n\n" + imports
    ]
    for name in list_models():
        parts.append(
            f"\n\ndef {name}(**options: Unpack[{options}]) -> ResNet:\n"
            f'    """The zoo\'s ``{name}`` (``resnet_spec/resnets.yaml``, ``resnet list``)."""\n'
            f'    return create_model("{name}", **options)\n'
        )
    names = "".join(f'    "{n}",\n' for n in list_models())
    parts.append(f"\n\n#: Every builder, in the YAML's order (``resnet_spec.list_models()``).\n__all__ = [\n{names}]\n")
    return "".join(parts)


def main(root: Path) -> int:
    """Write every backend's builders.py under ``root``; prints the ones that changed."""
    for framework in BACKENDS:
        path = root / f"resnet_{framework}" / "builders.py"
        text = builders_source(framework)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
