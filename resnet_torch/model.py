"""The ResNet model and ``create_model`` (PyTorch). Built only from the spec."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from resnet_spec.model_spec import ModelSpec
from resnet_spec.numerics import linear_init_bound
from resnet_spec.plan import feature_channels, feature_names, plan_stages, stem_convs
from resnet_spec.spec import check_dtype, get_spec
from resnet_torch.blocks import BLOCKS, conv, norm, pad_same


class SameMaxPool2d(nn.MaxPool2d):
    """The stem's 3x3/2 max-pool padded (with -inf) as TensorFlow's SAME: Flax's examples/imagenet."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, 3, 2, value=float("-inf")))


# --8<-- [start:torch-pool]
def stem_pool(spec: ModelSpec) -> nn.Module:
    """The stem max-pool; keras.applications zero-pads first (differs from -inf only on negative input)."""
    if not spec.stem.pool:
        return nn.Identity()
    if spec.padding == "same":
        return SameMaxPool2d(3, stride=2)
    if spec.stem.pool_pad == "zero":
        return nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(3, stride=2))
    return nn.MaxPool2d(3, stride=2, padding=1)  # torch pads max-pool with -inf


# --8<-- [end:torch-pool]


def stem(spec: ModelSpec) -> nn.Module:
    """The stem conv; a deep stem's 3x3 convs with BN + ReLU between, numbered as timm's ``conv1`` Sequential."""
    convs = stem_convs(spec)
    if len(convs) == 1:
        return conv(convs[0])
    layers: list[nn.Module] = []
    for c in convs[:-1]:
        layers += [conv(c), norm(c.out_channels, spec), nn.ReLU()]
    return nn.Sequential(*layers, conv(convs[-1]))


# --8<-- [start:model]
class ResNet(nn.Module):
    """ResNet v1 / v1.5 / v2 from a :class:`resnet_spec.ModelSpec`; state_dict keys are torchvision's.

    Args:
        spec: the resolved spec (see ``resnet_spec.get_spec``).

    Example:
        >>> model = ResNet(get_spec("resnet18")).eval()
        >>> model(torch.zeros(2, 3, 97, 131)).shape
        torch.Size([2, 1000])
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.conv1 = stem(spec)
        self.bn1 = norm(spec.stem.width, spec) if spec.stem.norm else None
        self.relu = nn.ReLU()
        self.maxpool = stem_pool(spec)
        block_cls = BLOCKS[(spec.block, spec.preact)]
        for blocks in plan_stages(spec):
            stage = nn.Sequential(*(block_cls(plan, spec) for plan in blocks))
            self.add_module(f"layer{blocks[0].stage}", stage)
        self.post_bn = norm(feature_channels(spec), spec) if spec.post_norm else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(feature_channels(spec), spec.num_classes) if spec.num_classes > 0 else None
        if self.fc is not None:
            bound = linear_init_bound(feature_channels(spec))
            nn.init.uniform_(self.fc.weight, -bound, bound)
            nn.init.uniform_(self.fc.bias, -bound, bound)

    def stages(self) -> list[nn.Sequential]:
        """The stages in order (four in the zoo, as many as the spec says in a derived one)."""
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.spec.depths))]

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stem output and each stage's output, keyed by ``resnet_spec.plan.feature_names``."""
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.bn1(x)
            if self.spec.stem.relu:  # tutorial models without a stem ReLU: False
                x = self.relu(x)
        x = self.maxpool(x)
        names = feature_names(self.spec)
        features = {names[0]: x}
        for i, stage in enumerate(self.stages()):  # plain enumerate: paddle's dy2static rejects zip(strict=)/start=
            x = stage(x)
            features[names[i + 1]] = x
        return features

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Post-norm (V2), global average pooling and the classifier (if any)."""
        if self.post_bn is not None:
            x = self.relu(self.post_bn(x))
        x = torch.flatten(self.avgpool(x), 1)
        return x if self.fc is None else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x)[feature_names(self.spec)[-1]])


# --8<-- [end:model]


def create_model(
    name: str | ModelSpec, *, num_classes: int | None = None, dtype: str = "float32", **overrides: Any
) -> ResNet:
    """Build a zoo model by name (or from a ``ModelSpec``) with random weights.

    Args:
        name: a name from ``resnet_spec.list_models()`` or a resolved ``ModelSpec``.
        num_classes: classifier outputs (default: the spec's, 1000 for the ImageNet zoo); 0 returns
            the pooled features.
        dtype: parameter dtype, "float32" or "float64".
        **overrides: ``zero_init_residual``, ``replace_stride_with_dilation``, ``stem``, ``in_channels``.

    Example:
        >>> create_model("resnet50", num_classes=10).fc.out_features
        10
    """
    spec = get_spec(name, num_classes=num_classes, **overrides) if isinstance(name, str) else name
    return ResNet(spec).to(getattr(torch, check_dtype(dtype)))


def model_spec(model: ResNet) -> ModelSpec:
    """The spec a model was built from."""
    return model.spec
