"""The trap suite: the mistakes that bite people converting ResNets, each planted on purpose in one place of
the target, must make block-level parity fail and name the block where it was planted. The source is torch
with clean weights (random BN statistics and affine terms), the input odd-sized and non-square, batch 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.parity.engine import compare

pytestmark = pytest.mark.skipif(not {"torch", "keras"} <= set(LOADED), reason="needs torch and keras")
TOL = tolerance("float32", "cpu", "eval").rel
X = np.random.default_rng(7).standard_normal((2, 3, 33, 47)).astype("float32")  # odd H, even W after the stem


def _parity(
    name: str,
    target: str,
    *,
    spec_args: dict[str, Any] | None = None,
    weights: Callable[[dict], dict] | None = None,
    model: Callable[[Any], None] | None = None,
) -> dict:
    """Block-level parity of torch (clean) against ``target`` built with tampered ``weights`` and/or a
    tampered ``model``; the engine's comparison of every block's output."""
    spec = get_spec(name, **(spec_args or {}))
    clean = random_weights(spec, seed=0)
    torch_mod, mod = LOADED["torch"], LOADED[target]
    ref = torch_mod.forward_blocks(torch_mod.import_weights(torch_mod.create_model(spec), clean), X)
    built = mod.import_weights(mod.create_model(spec), weights(dict(clean)) if weights else clean)
    if model:
        model(built)
    return compare(ref, mod.forward_blocks(built, X), TOL, blocks=True)


@pytest.mark.parametrize(
    ("name", "target"), [("resnet18", "keras"), ("resnext50_32x4d", "keras"), ("resnet18", "torch")]
)
def test_without_a_trap_every_block_agrees(name: str, target: str) -> None:
    """The control: the same harness, nothing planted, passes at every block."""
    result = _parity(name, target)
    assert result["passed"] and len(result["stages"]) > 8, result["first_divergent_stage"]


def test_a_swapped_bn_eps_is_named() -> None:
    """Keras' default BN epsilon (1e-3) in one BN of block layer3.1, instead of the spec's 1e-5."""

    def swap(model: Any) -> None:
        model.get_layer("conv4_block2_2_bn").epsilon = 1e-3

    assert _parity("resnet18", "keras", model=swap)["first_divergent_stage"] == "layer3.1"


def test_same_padding_at_stride_2_is_named() -> None:
    """The stride-2 conv of block layer2.0 padded as Keras/TF 'same' pads: the total padding split with the
    larger half after (bottom/right) and computed from the input size, instead of torch's fixed symmetric
    padding. On this odd-sized input the block's input is 9x12, and its even side is padded after only."""
    import torch
    import torch.nn.functional as F

    class TfSame(torch.nn.Module):
        def __init__(self, conv: torch.nn.Conv2d) -> None:
            super().__init__()
            self.conv, self.k, self.s = conv, conv.kernel_size[0], conv.stride[0]
            conv.padding = (0, 0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pads = []
            for n in (x.shape[3], x.shape[2]):  # W then H: F.pad's order
                total = max((-(-n // self.s) - 1) * self.s + self.k - n, 0)
                pads += [total // 2, total - total // 2]
            return self.conv(F.pad(x, pads))  # type: ignore[no-any-return]

    def pad_same(model: Any) -> None:
        model.layer2[0].conv1 = TfSame(model.layer2[0].conv1)

    assert _parity("resnet18", "torch", model=pad_same)["first_divergent_stage"] == "layer2.0"


def test_a_transposed_classifier_is_named() -> None:
    """A square classifier (512 -> 512 classes) loaded transposed: shapes match, so only values can tell."""

    def transpose(w: dict) -> dict:
        return {**w, "fc.weight": np.ascontiguousarray(w["fc.weight"].T)}

    result = _parity("resnet18", "keras", spec_args={"num_classes": 512}, weights=transpose)
    assert result["first_divergent_stage"] == "logits"


def test_mis_mapped_groups_are_named() -> None:
    """ResNeXt's grouped 3x3 conv of block layer2.0 with its 32 groups' filters shifted by one group."""

    def shift_groups(w: dict) -> dict:
        k = "layer2.0.conv2.weight"
        groups = get_spec("resnext50_32x4d").groups
        g = w[k].reshape(groups, -1, *w[k].shape[1:])
        return {**w, k: np.roll(g, 1, axis=0).reshape(w[k].shape)}

    assert _parity("resnext50_32x4d", "keras", weights=shift_groups)["first_divergent_stage"] == "layer2.0"


def test_a_layout_reshaped_instead_of_transposed_is_named() -> None:
    """NCHW/NHWC confusion: block layer1.1's first conv taken as HWIO by reshaping its OIHW bytes (what a
    converter does that reshapes where it should transpose), then laid out as OIHW again."""

    def reshape(w: dict) -> dict:
        k = "layer1.1.conv1.weight"
        o, i, kh, kw = w[k].shape
        return {**w, k: np.ascontiguousarray(w[k].reshape(kh, kw, i, o).transpose(3, 2, 0, 1))}

    assert _parity("resnet18", "keras", weights=reshape)["first_divergent_stage"] == "layer1.1"


def test_a_negative_only_difference_is_named() -> None:
    """A signed max (max(out - ref)) would miss a difference that is negative everywhere; the absolute one
    names the block. Also NaN at a block: never within tolerance."""
    spec = get_spec("resnet18")
    torch_mod = LOADED["torch"]
    ref = torch_mod.forward_blocks(
        torch_mod.import_weights(torch_mod.create_model(spec), random_weights(spec, seed=0)), X
    )
    out = {k: v.copy() for k, v in ref.items()}
    out["layer3.0"] -= 1e-3 * np.abs(ref["layer3.0"]).max()
    assert (out["layer3.0"] - ref["layer3.0"]).max() < 0  # the signed max sees nothing
    assert compare(ref, out, TOL, blocks=True)["first_divergent_stage"] == "layer3.0"
    out = {k: v.copy() for k, v in ref.items()}
    out["layer4.1"][0, 0, 0, 0] = np.nan
    assert compare(ref, out, TOL, blocks=True)["first_divergent_stage"] == "layer4.1"
