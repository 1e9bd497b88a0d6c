"""ResNet zoo in PyTorch, built from the shared YAML spec; state_dict keys are torchvision's.

Example:
    >>> import resnet_torch
    >>> model = resnet_torch.create_model("resnet50").eval()
"""

from resnet_torch import builders
from resnet_torch.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnet_torch.builders import *  # noqa: F403  (one builder per zoo model, listed in builders.__all__)
from resnet_torch.model import ResNet, create_model, model_spec
from resnet_torch.runtime import (
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
from resnet_torch.training import Trainer
from resnet_torch.weights import FRAMEWORK, export_weights, import_weights

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
