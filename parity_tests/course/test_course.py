"""The course's checker (resnet_tools.course.check_model): a correct hand-written ResNet passes, and each typical
mistake is named at the right stage with its cause. The course's own solution files are the models under test."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from parity_tests.conftest import LOADED
from parity_tests.handwritten import keras_cifar_resnet18, torch_cifar_resnet18, torch_opaque_resnet50
from resnet_spec.errors import ResNetError
from resnet_tools.course import check_model, stage_name

SOLUTIONS = Path(__file__).resolve().parents[2] / "course" / "solutions"


def _solution(module: str) -> Any:
    sys.path.insert(0, str(SOLUTIONS))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(SOLUTIONS))


needs_paddle = pytest.mark.skipif("paddle" not in LOADED, reason="paddle not installed")
needs_keras = pytest.mark.skipif("keras" not in LOADED, reason="keras not installed")
needs_torch = pytest.mark.skipif("torch" not in LOADED, reason="torch not installed")


def test_stage_names_follow_the_paper() -> None:
    assert stage_name("layer2.0") == "stage2 block0" and stage_name("stem") == "stem"


@needs_paddle
def test_the_worked_solution_passes_at_every_stage() -> None:
    report = check_model(_solution("resnet50_paddle").ResNet50(), "resnet50")
    assert report.passed, str(report)
    assert [f.where for f in report.findings][:3] == ["stem", "stage1 block0", "stage1 block1"]
    assert len(report.findings) == 1 + 16 + 1  # stem, 3+4+6+3 blocks, logits
    assert report.verdict == "PASS: your paddle model computes resnet50"


@needs_paddle
def test_a_shortcut_without_its_bn_is_named() -> None:
    report = check_model(_solution("wrong_shortcut").build(), "resnet50")
    assert not report.passed
    bad = report.first_problem
    assert bad is not None and bad.where == "stage1 block0"
    assert "your shortcut is missing its BN" in bad.detail and "stages.0.0.shortcut" in bad.detail


@needs_paddle
def test_a_relu_before_the_addition_is_named() -> None:
    report = check_model(_solution("wrong_relu").build(), "resnet50")
    bad = report.first_problem
    assert bad is not None and bad.where == "stage1 block0", str(report)
    assert "the ReLU comes before the addition" in bad.detail
    assert [f.ok for f in report.findings] == [True, False]  # the stem agreed; the first block did not


@needs_paddle
def test_the_stride_on_the_1x1_conv_is_named() -> None:
    from paddle import nn

    base = _solution("resnet50_paddle")

    class StrideOn1x1(base.Bottleneck):  # type: ignore[misc,name-defined]
        def __init__(self, in_ch: int, mid: int, stride: int = 1) -> None:
            super().__init__(in_ch, mid, stride)
            self.reduce = nn.Conv2D(in_ch, mid, 1, stride=stride, bias_attr=False)
            self.spatial = nn.Conv2D(mid, mid, 3, padding=1, bias_attr=False)

    bad = check_model(base.ResNet50(block=StrideOn1x1), "resnet50").first_problem
    assert bad is not None and bad.where == "stage2 block0"  # stage 1 has no stride: it agrees
    assert "the stride sits on the first 1x1 conv" in bad.detail


@needs_torch
def test_hand_written_torch_resnets_pass() -> None:
    report = check_model(torch_cifar_resnet18(), "resnet18")  # the CIFAR stem is read from the model
    assert report.passed, str(report)
    assert check_model(torch_opaque_resnet50(), "resnet50").passed


@needs_torch
def test_a_torch_block_without_its_last_relu_is_named() -> None:
    import torch

    model = torch_cifar_resnet18()
    block = model.layer3[1]  # the mistake in one block: out = bn2(conv2(...)) + shortcut, no ReLU after it
    block.forward = lambda x: block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))) + block.shortcut(x)
    report = check_model(model, "resnet18")
    bad = report.first_problem
    assert bad is not None and bad.where == "stage3 block1", str(report)
    assert "ReLU after the addition" in bad.detail
    assert all(f.ok for f in report.findings[:-1])  # stem and every block before it agreed


@needs_torch
def test_a_block_of_another_shape_is_named_at_that_block() -> None:
    """A stride left out (stage 3's first block at stride 1): its output is twice as high and wide as the
    reference's, so that block fails, naming both shapes, though every later one has the same weights."""
    model = torch_cifar_resnet18()
    model.layer3[0].conv1.stride = (1, 1)
    model.layer3[0].shortcut[0].stride = (1, 1)
    report = check_model(model, "resnet18")
    bad = report.first_problem
    assert bad is not None and bad.where == "stage3 block0", str(report)
    assert "its output is [2, 256, 16, 20], the reference's [2, 256, 8, 10]" in bad.detail, bad.detail
    assert all(f.ok for f in report.findings[:-1])


@needs_torch
def test_the_wrong_model_name_says_what_differs() -> None:
    report = check_model(torch_cifar_resnet18(), "resnet34")
    bad = report.first_problem
    assert bad is not None and bad.where == "structure" and "8 residual blocks where resnet34 has 16" in bad.detail


def test_a_model_of_another_kind_is_one_clear_error() -> None:
    with pytest.raises(
        ResNetError, match=r"takes a torch nn\.Module, a paddle nn\.Layer or a functional keras\.Model; got a dict"
    ):
        check_model({}, "resnet50")


# ---- Keras: functional models, followed through their graph ----------------------------------------------------


@needs_keras
def test_a_keras_functional_resnet_passes_at_every_stage() -> None:
    report = check_model(keras_cifar_resnet18(), "resnet18")
    assert report.passed, str(report)
    assert [f.where for f in report.findings] == [
        "stem",
        *(f"stage{s} block{b}" for s in range(1, 5) for b in range(2)),
        "logits",
    ]
    assert report.verdict == "PASS: your keras model computes resnet18"


@needs_keras
def test_keras_mistakes_are_named_at_their_stage() -> None:
    no_relu = check_model(keras_cifar_resnet18(relu_after_add=False), "resnet18").first_problem
    assert no_relu is not None and no_relu.where == "stage1 block0"
    assert "the ReLU after the addition (relu(out + shortcut)) is missing" in no_relu.detail
    no_bn = check_model(keras_cifar_resnet18(shortcut_bn=False), "resnet18").first_problem
    assert no_bn is not None and no_bn.where == "stage2 block0" and "your shortcut is missing its BN" in no_bn.detail
    same = check_model(keras_cifar_resnet18(same_padding=True), "resnet18").first_problem
    assert same is not None and same.where == "stage2 block0", same  # the first strided conv
    assert "uses padding='same' with stride 2" in same.detail and "ZeroPadding2D(1)" in same.detail


@needs_keras
def test_a_subclassed_keras_model_is_refused_with_what_to_do() -> None:
    import keras

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.conv = keras.layers.Conv2D(8, 3)

        def call(self, x: Any) -> Any:
            return self.conv(x)

    report = check_model(Net(), "resnet18")
    bad = report.first_problem
    assert bad is not None and bad.where == "structure" and "Build it with the functional API" in bad.detail


@needs_torch
def test_d2l_resnet18_is_held_to_the_zoo_entry() -> None:
    """The checker does not build resnet18 with the options a conversion would try (conv_bias, a shortcut conv
    without BN): d2l.ai's model (for 3-channel images here; the book's is for 1) is named as differing where it
    does, at the first projection."""
    from parity_tests.handwritten import torch_d2l_resnet18

    report = check_model(torch_d2l_resnet18(in_channels=3), "resnet18")
    bad = report.first_problem
    assert not report.passed and bad is not None and bad.where == "stage2 block0", str(report)
    assert "your shortcut is missing its BN" in bad.detail and "2.0.conv3" in bad.detail


@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_d2l_resnet18_passes_as_d2l_teaches_it(framework: str) -> None:
    """Checked against the d2l variant (conv biases, a projection without BN, 1-channel input), the book's model
    passes at every block, in both editions of the book (against the zoo's entry it fails: the test above)."""
    if framework not in LOADED:
        pytest.skip(f"{framework} not installed")
    from parity_tests.handwritten import paddle_d2l_resnet18, torch_d2l_resnet18

    build = torch_d2l_resnet18 if framework == "torch" else paddle_d2l_resnet18
    report = check_model(build(), "resnet18", variant="d2l")
    assert report.passed, str(report)
    assert report.model == "resnet18 (d2l)" and len(report.findings) == 1 + 8 + 1
    with pytest.raises(ResNetError, match="unknown variant 'fastai'; known: d2l"):
        check_model(build(), "resnet18", variant="fastai")


# ---- typical mistakes in the course's solution files (test_mistakes.py: each in torch and in paddle) ----------


def _problem(model: Any, zoo: str) -> Any:
    report = check_model(model, zoo)
    bad = report.first_problem
    assert bad is not None, str(report)
    assert "--reference" not in bad.detail and "Traceback" not in bad.detail and "\n" not in bad.detail, bad.detail
    return bad


@needs_paddle
def test_a_paddle_conv_without_its_padding_is_one_line() -> None:
    """paddle's own error is many lines of C++ summary: the student sees the layer, its padding and paddle's
    one-line reason, without the source location."""
    from paddle import nn

    model = _solution("resnet50_paddle").ResNet50()
    model.stages[1][2].spatial = nn.Conv2D(128, 128, 3, bias_attr=False)  # padding left at its default, 0
    bad = _problem(model, "resnet50")
    assert bad.where == "stage2 block2", bad
    assert "stages.1.2.spatial: a 3x3 conv with padding=0" in bad.detail and ".h:" not in bad.detail, bad


def _torch_resnet50(expansion: int = 4) -> Any:
    """A student's ResNet-50 in PyTorch with the bottleneck's expansion as a parameter (the lesson's is 4)."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, mid: int, stride: int) -> None:
            super().__init__()
            out = mid * expansion
            self.conv1, self.bn1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
            self.conv2, self.bn2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid)
            self.conv3, self.bn3 = nn.Conv2d(mid, out, 1, bias=False), nn.BatchNorm2d(out)
            self.down = None
            if stride != 1 or cin != out:
                self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.down is None else self.down(x)))

    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    blocks, cin = [], 64
    for mid, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        stage = []
        for i in range(n):
            stage.append(Bottleneck(cin, mid, stride if i == 0 else 1))
            cin = mid * expansion
        blocks.append(nn.Sequential(*stage))
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*stem, *blocks, *head).eval()


@needs_torch
def test_a_bottleneck_expanding_2x_is_named() -> None:
    assert check_model(_torch_resnet50(), "resnet50").passed  # the same student code with expansion 4 passes
    bad = _problem(_torch_resnet50(expansion=2), "resnet50")
    assert bad.where == "stage1 block0", bad
    assert "your bottleneck expands 2x: its last 1x1 conv (4.0.conv3) gives 128 channels from 64" in bad.detail
    assert "the reference's expands 4x (256 channels, expansion = 4)" in bad.detail


needs_flax = pytest.mark.skipif("flax" not in LOADED, reason="flax not installed")


@needs_flax
@pytest.mark.parametrize("cifar", [True, False])
def test_an_nnx_resnet_passes_at_every_stage(cifar: bool) -> None:
    """A tutorial's ``flax.nnx`` ResNet-18 (its layers watched as they run: NNX has no hooks)."""
    from parity_tests.handwritten import flax_tutorial_resnet18

    report = check_model(flax_tutorial_resnet18(cifar=cifar), "resnet18")
    assert report.passed, str(report)
    assert [f.where for f in report.findings] == [
        "stem",
        *(f"stage{s} block{b}" for s in range(1, 5) for b in range(2)),
        "logits",
    ]
    assert report.verdict == "PASS: your flax model computes resnet18"


@needs_flax
def test_nnx_mistakes_are_named_at_their_stage() -> None:
    from parity_tests.handwritten import flax_tutorial_resnet18

    stride = check_model(flax_tutorial_resnet18(cifar=True, stride_on_conv2=True), "resnet18").first_problem
    assert stride is not None and stride.where == "stage2 block0", stride
    assert "the stride sits on the second 3x3 conv (layer2.layers.0.conv2)" in stride.detail
    same = check_model(flax_tutorial_resnet18(same_padding=True), "resnet18").first_problem
    assert same is not None and same.where == "stem", same  # the 7x7 stride-2 conv, the first strided layer
    assert "a 7x7 conv with padding='SAME' and stride 2" in same.detail and "write padding=3" in same.detail


@needs_flax
def test_the_flax_exercise_solution_passes_and_its_padding_mistake_is_named() -> None:
    """Lesson 5's NNX solution assigns its blocks (``blocks``) after the stem (``conv1``): the checker follows the
    model's own order, not NNX's sorted attribute names, and names the planted 'SAME' padding."""
    flax_solution = _solution("resnet18_flax")
    report = check_model(flax_solution.build(), "resnet18")
    assert report.passed, str(report)
    bad = check_model(flax_solution.build(same_padding=True), "resnet18").first_problem
    assert bad is not None and bad.where == "stage2 block0" and "write padding=1" in bad.detail, bad
