"""The classroom's usual mistakes, each written as a student writes it, in PyTorch and in Paddle: one ImageNet-stem
ResNet-18 class per framework with the mistake as a switch. The checker must name each one's cause, in the words
of the course, at the stage and block where it sits, on one line, without a framework traceback or a CLI flag."""

from __future__ import annotations

from typing import Any

import pytest

from parity_tests.conftest import LOADED
from resnet_tools.course import check_model

FRAMEWORKS = [f for f in ("torch", "paddle") if f in LOADED]


def student_resnet18(framework: str, mistake: str | None = None) -> Any:
    """A ResNet-18 as a tutorial writes it (a BasicBlock class, `downsample`, an `fc` head), in ``framework``,
    with one of ``MISTAKES`` planted."""
    if framework == "torch":
        import torch
        from torch import nn

        base, conv, bn, pool, relu = nn.Module, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, torch.relu
        no_bias: dict[str, Any] = {"bias": False}
        mean = lambda x: x.mean((2, 3))  # noqa: E731
    else:
        import paddle
        from paddle import nn

        base, conv, bn, pool, relu = nn.Layer, nn.Conv2D, nn.BatchNorm2D, nn.MaxPool2D, paddle.nn.functional.relu
        no_bias = {"bias_attr": False}
        mean = lambda x: x.mean((2, 3))  # noqa: E731

    class BasicBlock(base):  # type: ignore[misc, valid-type]
        def __init__(self, cin: int, cout: int, stride: int, where: str) -> None:
            super().__init__()
            strided_second = mistake == "stride on conv2" and stride > 1
            self.conv1 = conv(cin, cout, 3, 1 if strided_second else stride, 1, **no_bias)
            self.bn1 = bn(cout)
            pad = 0 if mistake == "padding 0" and where == "layer3.1" else 1
            self.conv2 = conv(cout, cout, 3, stride if strided_second else 1, pad, **no_bias)
            self.bn2 = bn(cout)
            self.relu_first = mistake == "ReLU before the addition" and where == "layer3.1"
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(conv(cin, cout, 1, stride, **no_bias), bn(cout))

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.bn2(self.conv2(relu(self.bn1(self.conv1(x)))))
            return relu(out) + identity if self.relu_first else relu(out + identity)

    class ResNet18(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = conv(3, 64, 7, 2, 3, **no_bias), bn(64)
            self.maxpool = None if mistake == "no max-pool" else pool(3, 2, 1)
            stages, cin = [], 64
            for i, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
                blocks = [
                    BasicBlock(cin, cout, stride, f"layer{i + 1}.0"),
                    BasicBlock(cout, cout, 1, f"layer{i + 1}.1"),
                ]
                stages.append(nn.Sequential(*blocks))
                cin = cout
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.fc = nn.Linear(512, 10)

        def forward(self, x: Any) -> Any:
            x = relu(self.bn1(self.conv1(x)))
            x = x if self.maxpool is None else self.maxpool(x)
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            if mistake == "head uses the Linear weight directly":  # torch's weight is [out, in], paddle's [in, out]
                weight = self.fc.weight.T if framework == "torch" else self.fc.weight
                return mean(x) @ weight + self.fc.bias
            return self.fc(mean(x))

    return ResNet18().eval()


#: mistake -> (the stage and block it is named at, words of the message)
MISTAKES = {
    "stride on conv2": ("stage2 block0", "the stride sits on the second 3x3 conv (layer2.0.conv2)"),
    "no max-pool": ("stem", "the stem has no max-pool"),
    "padding 0": ("stage3 block1", "layer3.1.conv2: a 3x3 conv with padding=0; the zoo's pads 1"),
    "ReLU before the addition": ("stage3 block1", "the ReLU comes before the addition"),
    "head uses the Linear weight directly": ("head", "never calls fc, its Linear layer"),
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_student_model_without_a_mistake_passes(framework: str) -> None:
    report = check_model(student_resnet18(framework), "resnet18")
    assert report.passed, report.verdict


@pytest.mark.parametrize("mistake", MISTAKES)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_mistake_is_named_at_its_block_by_its_cause(framework: str, mistake: str) -> None:
    where, words = MISTAKES[mistake]
    report = check_model(student_resnet18(framework, mistake), "resnet18")
    bad = report.first_problem
    assert bad is not None, report.verdict
    assert (bad.where, words in bad.detail) == (where, True), bad
    for noise in ("--reference", "Traceback", "\n", ".h:", ".cc:"):
        assert noise not in bad.detail, (noise, bad.detail)
