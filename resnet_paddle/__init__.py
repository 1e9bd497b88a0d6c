"""ResNet zoo in PaddlePaddle, built from the shared YAML spec; state_dict keys are paddle.vision's.

paddle 3.3.1 segfaults when imported after TensorFlow 2.21: importing this package then raises
``resnet_spec.ImportOrderError`` with what to do instead.

Example:
    >>> import resnet_paddle
    >>> model = resnet_paddle.create_model("resnet50")
    >>> model.eval()
"""

import sys
import warnings

from resnet_spec.errors import ImportOrderError


def tensorflow_loaded_before_paddle() -> bool:
    """True when importing paddle now would segfault."""
    return "tensorflow" in sys.modules and "paddle" not in sys.modules


# --8<-- [start:paddle-guard]
def guard_paddle_import() -> None:
    """Raise a clear error instead of letting ``import paddle`` crash the interpreter."""
    if tensorflow_loaded_before_paddle():
        raise ImportOrderError(
            "cannot import paddle: TensorFlow is already loaded in this process, and paddle 3.3.1 "
            "segfaults when imported after TensorFlow 2.21. Import resnet_paddle (or paddle) before "
            "tensorflow/keras, use KERAS_BACKEND=jax or torch, or run paddle in a separate process."
        )


# --8<-- [end:paddle-guard]


guard_paddle_import()  # must run before the first `import paddle` below

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="No ccache found")  # paddle's import-time build warning
    import paddle  # noqa: F401

from resnet_paddle import builders
from resnet_paddle.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnet_paddle.builders import *  # noqa: F403  (one builder per zoo model, listed in builders.__all__)
from resnet_paddle.model import ResNet, create_model, model_spec
from resnet_paddle.runtime import (
    amp_supported,
    fast_forward,
    forward_blocks,
    forward_numpy,
    gpu_available,
    native_shapes,
    param_counts,
    set_tf32,
    train_step_numpy,
)
from resnet_paddle.training import Trainer
from resnet_paddle.weights import FRAMEWORK, export_weights, import_weights

__all__ = [
    "FRAMEWORK",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "Trainer",
    "amp_supported",
    "create_model",
    "export_weights",
    "fast_forward",
    "forward_blocks",
    "forward_numpy",
    "gpu_available",
    "import_weights",
    "model_spec",
    "native_shapes",
    "param_counts",
    "set_tf32",
    "train_step_numpy",
]
__all__ += builders.__all__
