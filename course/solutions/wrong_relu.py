"""Lesson 5, a typical wrong solution: the last ReLU is applied before the addition, not after it
(``relu(bn3(conv3(y))) + identity``). The checker must name stage1 block0 and the ReLU before the addition."""

from __future__ import annotations

import paddle
from resnet50_paddle import Bottleneck, ResNet50


class ReluBeforeAdd(Bottleneck):
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        y = self.relu(self.reduce_bn(self.reduce(x)))
        y = self.relu(self.spatial_bn(self.spatial(y)))
        return self.relu(self.expand_bn(self.expand(y))) + identity  # the mistake: ReLU before the addition


def build() -> ResNet50:
    return ResNet50(block=ReluBeforeAdd)
