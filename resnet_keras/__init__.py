"""ResNet zoo in Keras 3, built from the shared YAML spec; layer names are keras.applications'.

Uses only ``keras.layers`` / ``keras.ops``: runs on the tensorflow, jax and torch backends
(``KERAS_BACKEND``).

Example:
    >>> import resnet_keras
    >>> model = resnet_keras.create_model("resnet50")
"""

from resnet_keras import builders
from resnet_keras.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnet_keras.builders import *  # noqa: F403  (one builder per zoo model, listed in builders.__all__)
from resnet_keras.model import ResNet, create_model, model_spec
from resnet_keras.runtime import (
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
from resnet_keras.training import Trainer
from resnet_keras.weights import FRAMEWORK, export_weights, import_weights

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
