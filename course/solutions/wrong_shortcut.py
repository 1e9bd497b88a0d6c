"""Lesson 5, a typical wrong solution: the projection shortcut is a 1x1 conv without its BatchNorm.
The checker must say: "stage1 block0 differs: your shortcut is missing its BN"."""

from __future__ import annotations

from paddle import nn
from resnet50_paddle import Bottleneck, ResNet50


class NoShortcutBN(Bottleneck):
    def __init__(self, in_ch: int, mid: int, stride: int = 1) -> None:
        super().__init__(in_ch, mid, stride)
        if self.shortcut is not None:  # the mistake: no BN after the projection
            self.shortcut = nn.Conv2D(in_ch, mid * self.expansion, 1, stride=stride, bias_attr=False)


def build() -> ResNet50:
    return ResNet50(block=NoShortcutBN)
