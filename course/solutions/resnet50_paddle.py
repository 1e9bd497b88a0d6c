"""Lesson 5, the worked solution: ResNet-50 in PaddlePaddle, written as a student would (残差块: the bottleneck
block), with names of its own. ``check_model(ResNet50(), "resnet50")`` passes."""

from __future__ import annotations

import paddle
from paddle import nn


class Bottleneck(nn.Layer):
    """1x1 reduce -> 3x3 (with the stride, ResNet v1.5) -> 1x1 expand, each followed by BN; the shortcut is the
    input, or a 1x1 conv + BN where the shape changes; ReLU after the addition."""

    expansion = 4

    def __init__(self, in_ch: int, mid: int, stride: int = 1) -> None:
        super().__init__()
        out = mid * self.expansion
        self.reduce = nn.Conv2D(in_ch, mid, 1, bias_attr=False)
        self.reduce_bn = nn.BatchNorm2D(mid)
        self.spatial = nn.Conv2D(mid, mid, 3, stride=stride, padding=1, bias_attr=False)
        self.spatial_bn = nn.BatchNorm2D(mid)
        self.expand = nn.Conv2D(mid, out, 1, bias_attr=False)
        self.expand_bn = nn.BatchNorm2D(out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Layer | None = None
        if stride != 1 or in_ch != out:
            self.shortcut = nn.Sequential(nn.Conv2D(in_ch, out, 1, stride=stride, bias_attr=False), nn.BatchNorm2D(out))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        y = self.relu(self.reduce_bn(self.reduce(x)))
        y = self.relu(self.spatial_bn(self.spatial(y)))
        y = self.expand_bn(self.expand(y))
        return self.relu(y + identity)


class ResNet50(nn.Layer):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages of 3, 4, 6, 3 blocks, global pool, classifier."""

    def __init__(self, num_classes: int = 1000, block: type[nn.Layer] = Bottleneck) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2D(3, 64, 7, stride=2, padding=3, bias_attr=False),
            nn.BatchNorm2D(64),
            nn.ReLU(),
            nn.MaxPool2D(3, stride=2, padding=1),
        )
        layers, in_ch = [], 64
        for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(block(in_ch, mid, stride if i == 0 else 1))
                in_ch = mid * 4
            layers.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.classifier(paddle.flatten(x, 1))
