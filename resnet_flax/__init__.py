"""ResNet zoo in Flax NNX, built from the shared YAML spec; parameter paths are Flax's examples/imagenet's.

Example:
    >>> import resnet_flax
    >>> model = resnet_flax.create_model("resnet50")
"""

from resnet_flax import builders
from resnet_flax.blocks import Block
from resnet_flax.builders import *  # noqa: F403  (one builder per zoo model, listed in builders.__all__)
from resnet_flax.model import ResNet, create_model, model_spec
from resnet_flax.runtime import (
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
from resnet_flax.training import Trainer
from resnet_flax.weights import FRAMEWORK, export_weights, import_weights

#: The block classes under the other backends' names (Flax's one Block module builds each from its plan).
BasicBlock = Bottleneck = PreActBasicBlock = PreActBottleneck = Block

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
