"""ResNet zoo in PaddlePaddle, built from the shared YAML spec; state_dict keys are paddle.vision's.

paddle 3.3.1 segfaults when imported after TensorFlow 2.21: importing this package then raises
``resnet_spec.ImportOrderError`` with what to do instead.

Example:
    >>> import resnet_paddle
    >>> model = resnet_paddle.create_model("resnet50")
    >>> model.eval()
"""

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

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


def home_for_paddle() -> str | None:
    """A HOME for this process when the user's cannot hold ``~/.cache/paddle`` (read-only, or not a folder):
    paddle writes there at import (its dataset cache) and later (``to_static``'s temp files) and fails with a
    traceback otherwise. The temp folder is removed at exit. None: the user's HOME is fine."""
    try:
        (Path.home() / ".cache" / "paddle" / "dataset").mkdir(parents=True, exist_ok=True)
        return None
    except (OSError, RuntimeError):  # RuntimeError: no home folder can be determined at all
        home = tempfile.mkdtemp(prefix="resnet-paddle-home-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        return home


guard_paddle_import()  # must run before the first `import paddle` below

if (_home := home_for_paddle()) is not None:
    os.environ["HOME"] = _home  # paddle reads ~ at import and at run time; nothing else of ours writes there
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
    release_caches,
    set_tf32,
    train_step_numpy,
    use_all_cores,
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
    "release_caches",
    "set_tf32",
    "train_step_numpy",
    "use_all_cores",
]
__all__ += builders.__all__
