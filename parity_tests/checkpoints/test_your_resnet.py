"""Your own ResNet: checkpoints of hand-written ResNets (parity_tests/handwritten.py: tutorial names, opaque
names, a V2 in keras.applications' layout, a CIFAR ResNet; random weights, BN statistics and biases) convert
by structure to every framework with the logits of the user's own model; wrappers and prefixes of training
scripts are read; ambiguous files are refused in one line, never converted wrongly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_spec.errors import CheckpointError
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert, resolve_spec
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
V15 = MapRequest(assume={"stride_on": "conv3x3"})  # the user says: a v1.5 bottleneck (the weights cannot show it)
EXT = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")


def _x(size: tuple[int, int] = (64, 96)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 3, *size)).astype("float32")


def _torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _paddle_out(model: Any, x: np.ndarray) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def _everywhere(
    src: Path, expected: np.ndarray, x: np.ndarray, tmp_path: Path, name: str, how: MapRequest = PLAIN
) -> None:
    """Convert ``src`` to each framework's file and run it there (the model the conversion says, built from its
    spec): the user's logits within the tolerance."""
    for fw, ext in EXT.items():
        dst = tmp_path / f"out-{fw}{ext}"
        result = convert(src, dst, how=how)
        assert result.spec.name == name, fw
        ckpt = read_checkpoint(dst, format_for(dst))
        mod = LOADED[fw]
        model = mod.import_weights(mod.create_model(result.spec), ckpt.weights)
        got = mod.forward_numpy(model, x)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, fw


def test_cifar_resnet_under_net_with_accuracy_converts(tmp_path: Path) -> None:
    import torch

    model = handwritten.torch_cifar_resnet18()
    x = _x((32, 40))
    src = tmp_path / "ckpt.pth"
    torch.save({"net": model.state_dict(), "acc": 93.1, "epoch": 7}, src)
    _everywhere(src, _torch_out(model, x), x, tmp_path, "resnet18")
    assert resolve_spec(read_checkpoint(src, format_for(src)), None).stem.kind == "cifar"


def test_paddle_tutorial_resnet50_converts(tmp_path: Path) -> None:
    import paddle

    model = handwritten.paddle_tutorial_resnet50()
    x = _x()
    src = tmp_path / "tutorial.pdparams"
    paddle.save(model.state_dict(), str(src))
    with pytest.raises(CheckpointError, match="--assume stride_on="):  # v1 or v1.5: the weights cannot show it
        convert(src, tmp_path / "refused.pth")
    _everywhere(src, _paddle_out(model, x), x, tmp_path, "resnet50", V15)


def test_keras_layout_v2_in_torch_converts_with_zero_biases(tmp_path: Path) -> None:
    import torch

    model = handwritten.torch_keras_style_resnet50v2()
    x = _x()
    src = tmp_path / "v2.pt"
    torch.save(model.state_dict(), src)
    with pytest.raises(CheckpointError, match=r"stride_block: last .* or first .*pool_pad: zero .* or neg_inf"):
        convert(src, tmp_path / "refused.pth")
    how = MapRequest(assume={"stride_block": "last", "pool_pad": "zero", "stride_on": "conv3x3"})  # the user's word
    _everywhere(src, _torch_out(model, x), x, tmp_path, "resnet50v2", how)


def test_opaque_names_learn_stage1_from_later_blocks(tmp_path: Path) -> None:
    """Single-letter names, shortcut registered before the last conv: stage 1's shortcut and last conv have
    the same shape; the blocks where shapes decide say which name is which."""
    import torch

    model = handwritten.torch_opaque_resnet50()
    x = _x()
    src = tmp_path / "opaque.bin"  # a torch file by its content, whatever the extension
    torch.save(model.state_dict(), src)
    ckpt = read_checkpoint(src, format_for(src), how=V15)
    assert any("roles taken from the blocks where the shapes decide" in n for n in ckpt.notes)
    assert any("settled as you said (--assume): stride_on=conv3x3" in n for n in ckpt.notes), ckpt.notes
    _everywhere(src, _torch_out(model, x), x, tmp_path, "resnet50", V15)


def test_ambiguous_names_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    model = handwritten.torch_opaque_resnet50(per_block_names=True)
    src = tmp_path / "ambiguous.pth"
    torch.save(model.state_dict(), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst), "--assume", "stride_on=conv3x3"]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and "r.0" in err and "--reference" in err and err.count("\n") == 1, err
    assert not dst.exists()


@pytest.mark.parametrize("wrapper", ["lightning", "compile", "ema", "ddp_in_model_state_dict"])
def test_training_wrappers_are_read(wrapper: str, tmp_path: Path) -> None:
    import torch

    rt = LOADED["torch"]
    model = handwritten.randomize_torch(rt.create_model("resnet18", num_classes=4), 5)
    state = model.state_dict()
    if wrapper == "lightning":
        obj: Any = {"epoch": 3, "global_step": 90, "state_dict": {f"model.{k}": v for k, v in state.items()},
                    "optimizer_states": [], "lr_schedulers": [], "pytorch-lightning_version": "2.5.0"}  # fmt: skip
        src = tmp_path / "epoch=3.ckpt"
    elif wrapper == "compile":
        obj = torch.compile(model).state_dict()
        assert all(k.startswith("_orig_mod.") for k in obj)
        src = tmp_path / "compiled.pt"
    elif wrapper == "ema":
        obj = {"state_dict_ema": state, "epoch": 1}
        src = tmp_path / "ema.pth.tar"
    else:
        obj = {"model_state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer_state_dict": {}}
        src = tmp_path / "ddp.tar"
    torch.save(obj, src)
    x = _x()
    expected = _torch_out(model, x)
    dst = tmp_path / "out.pdparams"
    assert convert(src, dst).spec.name == "resnet18"
    rp = LOADED["paddle"]
    ckpt = read_checkpoint(dst, format_for(dst))
    got = rp.forward_numpy(rp.import_weights(rp.create_model("resnet18", num_classes=4), ckpt.weights), x)["logits"]
    assert tensor_diff(expected, got).max_rel <= TOL


def test_pickled_whole_model_says_save_the_state_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    src = tmp_path / "whole.pth"
    torch.save(LOADED["torch"].create_model("resnet18"), src)  # the whole model, pickled
    assert main(["inspect", str(src)]) == 2
    err = capsys.readouterr().err
    assert "state_dict()" in err and err.count("\n") == 1, err


def test_map_table_and_an_edited_map_file_settle_an_ambiguous_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``resnet map --save`` on an ambiguous file writes a draft (one choice, flagged); the user fixes the flagged
    block in the YAML, and ``--map`` converts with the user's logits. The unedited draft is refused (its choice would
    give other logits), until its 'unchecked:' entry is deleted."""
    import torch
    import yaml

    model = handwritten.torch_opaque_resnet50(per_block_names=True)
    src = tmp_path / "ambiguous.pth"
    torch.save(model.state_dict(), src)
    draft = tmp_path / "map.yaml"
    assert main(["map", str(src), "--save", str(draft), "--assume", "stride_on=conv3x3"]) == 0
    out = capsys.readouterr().out
    assert "r.0.a0.weight" in out and "layer1.0.conv1.weight" in out and "AMBIGUOUS" in out
    x = _x()
    expected = _torch_out(model, x)

    def logits_with(map_file: Path) -> np.ndarray:
        dst = tmp_path / f"{map_file.stem}.pdparams"
        assert main(["convert", str(src), str(dst), "--map", str(map_file)]) == 0
        ckpt = read_checkpoint(dst, format_for(dst))
        rp = LOADED["paddle"]
        return rp.forward_numpy(rp.import_weights(rp.create_model("resnet50", num_classes=5), ckpt.weights), x)[
            "logits"
        ]

    data = yaml.safe_load(draft.read_text())
    assert data["unchecked"], data
    capsys.readouterr()
    assert main(["convert", str(src), str(tmp_path / "draft.pdparams"), "--map", str(draft)]) == 2
    err = capsys.readouterr().err
    assert "unchecked draft" in err and "r.0" in err and err.count("\n") == 1, err
    data.pop("unchecked")
    fixed = dict(data, modules={**data["modules"], "r.0.s0": "layer1.0.downsample.0", "r.0.t0": "layer1.0.downsample.1",
                                "r.0.e0": "layer1.0.conv3", "r.0.f0": "layer1.0.bn3"})  # fmt: skip
    edited = tmp_path / "fixed.yaml"
    edited.write_text(yaml.safe_dump(fixed))
    assert tensor_diff(expected, logits_with(edited)).max_rel <= TOL
    unchecked = tmp_path / "unchecked.yaml"  # the draft with its flag deleted but its lines not checked
    unchecked.write_text(yaml.safe_dump(data))
    assert tensor_diff(expected, logits_with(unchecked)).max_rel > 100 * TOL  # the draft's arbitrary choice is wrong


def test_bad_map_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    import yaml

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    good = tmp_path / "good.yaml"
    assert main(["map", str(src), "--save", str(good)]) == 0
    data = yaml.safe_load(good.read_text())
    swapped = dict(data["modules"], **{"layer1.0.conv1": "layer1.0.conv2", "layer1.0.conv2": "layer1.0.conv1"})
    cases = {
        "not yaml": ("modules: [", "not YAML"),
        "no modules": ("framework: torch\nmodel: resnet18\n", "no 'modules:'"),
        "wrong framework": (yaml.safe_dump(dict(data, framework="paddle")), "the map is for a paddle checkpoint"),
        "missing module": (
            yaml.safe_dump(dict(data, modules={k: v for k, v in data["modules"].items() if k != "linear"})),
            "linear is in the file but not the map",
        ),
        "twice": (yaml.safe_dump(dict(data, modules=dict(data["modules"], bn1="layer1.0.bn1"))), "sends both"),
        "kind": (yaml.safe_dump(dict(data, modules=dict(data["modules"], conv1="bn1"))), "sends conv1 (conv"),
    }
    capsys.readouterr()
    for case, (text, expected) in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        assert main(["inspect", str(src), "--map", str(bad)]) == 2, case
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (case, err)
    # a swap of two same-shape units is accepted by the map (the user said so) and changes the logits
    ok = tmp_path / "swapped.yaml"
    ok.write_text(yaml.safe_dump(dict(data, modules=swapped)))
    assert main(["inspect", str(src), "--map", str(ok)]) == 0


def test_cifar_to_paddle_and_back_like_the_users_file(tmp_path: Path) -> None:
    """CIFAR ResNet (under 'net', with BN counters) -> paddle -> back with --like: the user's own model loads the
    file with strict=True and computes the same logits; float64 templates keep float64."""
    import torch

    model = handwritten.torch_cifar_resnet18()
    x = _x((32, 40))
    src = tmp_path / "ckpt.pth"
    torch.save({"net": model.state_dict(), "acc": 93.1, "epoch": 7}, src)
    paddle_file, back = tmp_path / "cifar.pdparams", tmp_path / "back.pth"
    convert(src, paddle_file, verify=True)
    result = convert(paddle_file, back, like=src, verify=True)
    assert result.verify is not None and any("naming and wrapper" in n for n in result.notes)
    loaded = torch.load(back, weights_only=True)
    assert list(loaded) == ["net"] and list(loaded["net"]) == list(model.state_dict())
    fresh = handwritten.torch_cifar_resnet18()
    fresh.load_state_dict(loaded["net"], strict=True)
    assert tensor_diff(_torch_out(model, x), _torch_out(fresh.eval(), x)).max_rel <= TOL

    double = tmp_path / "f64.pth"
    torch.save({"net": model.double().state_dict()}, double)
    out64 = tmp_path / "out64.pth"
    convert(paddle_file, out64, like=double)
    assert all(v.dtype == torch.float64 for k, v in torch.load(out64)["net"].items() if v.is_floating_point())


def test_torch_to_paddle_tutorial_layout_with_like(tmp_path: Path) -> None:
    """A torchvision-named resnet50 written in the paddle tutorial's names: the tutorial model loads it."""
    import paddle
    import torch

    tutorial = handwritten.paddle_tutorial_resnet50(num_classes=102)
    template = tmp_path / "tutorial.pdparams"
    paddle.save(tutorial.state_dict(), str(template))
    rt = LOADED["torch"]
    ours = handwritten.randomize_torch(rt.create_model("resnet50", num_classes=102), 9)
    src = tmp_path / "tv.pth"
    torch.save(ours.state_dict(), src)
    out = tmp_path / "for_tutorial.pdparams"
    convert(src, out, like=template)
    fresh = handwritten.paddle_tutorial_resnet50(num_classes=102)
    missing, unexpected = fresh.set_state_dict(paddle.load(str(out)))
    assert not missing and not unexpected
    x = _x()
    assert tensor_diff(_torch_out(ours, x), _paddle_out(fresh, x)).max_rel <= TOL


def test_like_refuses_another_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    other = tmp_path / "opaque.pth"
    torch.save(handwritten.torch_opaque_resnet50().state_dict(), other)
    dst = tmp_path / "out.pth"
    assert main(["convert", str(src), str(dst), "--like", str(other)]) == 2
    err = capsys.readouterr().err
    assert "opaque.pth" in err and err.count("\n") == 1 and not dst.exists(), err


# ---- --reference: map by running the user's code, prove it ----------------------------------------------


def _reference_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "my_model.py"
    path.write_text(f"from parity_tests import handwritten\n\n\ndef build():\n    return {body}\n")
    return f"{path}:build"


def test_reference_maps_an_ambiguous_file_by_running_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    model = handwritten.torch_opaque_resnet50(per_block_names=True)
    src = tmp_path / "ambiguous.pth"
    torch.save(model.state_dict(), src)
    ref = _reference_file(tmp_path, "handwritten.torch_opaque_resnet50(per_block_names=True)")
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst), "--reference", ref]) == 0
    assert "proved against your model" in capsys.readouterr().out
    x = _x()
    ckpt = read_checkpoint(dst, format_for(dst))
    rp = LOADED["paddle"]
    got = rp.forward_numpy(rp.import_weights(rp.create_model("resnet50", num_classes=5), ckpt.weights), x)["logits"]
    assert tensor_diff(_torch_out(model, x), got).max_rel <= TOL


def test_reference_in_paddle_proves_the_tutorial_model(tmp_path: Path) -> None:
    import paddle

    src = tmp_path / "tutorial.pdparams"
    paddle.save(handwritten.paddle_tutorial_resnet50().state_dict(), str(src))
    ref = _reference_file(tmp_path, "handwritten.paddle_tutorial_resnet50()")
    result = convert(src, tmp_path / "out.pth", how=MapRequest(reference=ref))
    assert any("proved against your model" in n for n in result.notes)
    assert result.spec.stride_on == "conv3x3" and any("the run proved stride_on=conv3x3" in n for n in result.notes)


def test_a_neg_inf_stem_pool_v2_is_refused_without_code_and_proved_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-written PyTorch ResNet50V2 whose stem max-pool pads with -inf (keras.applications pads with zeros):
    the same weights as resnet50v2, other numbers. Without the code: exit 2, naming the padding and the stride's
    place, nothing written. With --reference: the run proves pool_pad=neg_inf, and the file in every framework,
    built as the conversion says, computes the user's logits."""
    import torch

    model = handwritten.torch_keras_style_resnet50v2(neg_inf_pool=True)
    src = tmp_path / "v2.pth"
    torch.save(model.state_dict(), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "pool_pad: zero" in err and "neg_inf" in err and "stride_block" in err and "--reference" in err, err
    assert err.count("\n") == 1 and not dst.exists()
    ref = _reference_file(tmp_path, "handwritten.torch_keras_style_resnet50v2(neg_inf_pool=True)")
    assert main(["convert", str(src), str(dst), "--reference", ref, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "pool_pad='neg_inf'" in out and "the run proved" in out, out
    _everywhere(src, _torch_out(model, _x()), _x(), tmp_path, "resnet50v2", MapRequest(reference=ref))


def test_reference_reports_an_architectural_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A head that max-pools where every ResNet of the zoo averages: no look-alike computes it; the proof names the
    head, exit 1, nothing written."""
    import torch

    src = tmp_path / "v2.pth"
    torch.save(handwritten.torch_keras_style_resnet50v2(head_pool="max").state_dict(), src)
    ref = _reference_file(tmp_path, "handwritten.torch_keras_style_resnet50v2(head_pool='max')")
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst), "--reference", ref]) == 1
    err = capsys.readouterr().err
    assert "not in the logits" in err and "the head differs" in err and not dst.exists(), err


def test_a_swap_of_two_same_shape_units_fails_the_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break the mapper on purpose: swap stage 1's shortcut and last conv (same shape): the proof names the block."""
    import torch

    from resnet_tools.checkpoints import reference

    honest = reference.map_units

    def swapped(*args: Any, **kwargs: Any) -> Any:
        mapped, notes = honest(*args, **kwargs)
        for a, b in (("layer1.0.conv3", "layer1.0.downsample.0"), ("layer1.0.bn3", "layer1.0.downsample.1")):
            mapped[a], mapped[b] = mapped[b], mapped[a]
        return mapped, notes

    monkeypatch.setattr(reference, "map_units", swapped)
    src = tmp_path / "opaque.pth"
    torch.save(handwritten.torch_opaque_resnet50().state_dict(), src)
    ref = _reference_file(tmp_path, "handwritten.torch_opaque_resnet50()")
    assert main(["convert", str(src), str(tmp_path / "out.pth"), "--reference", ref]) == 1
    assert "part at block layer1.0" in capsys.readouterr().err


def test_bad_references_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    cases = {
        "no colon": (str(tmp_path / "x.py"), "give FILE.py:CALLABLE"),
        "no file": (f"{tmp_path / 'nope.py'}:build", "no such file"),
        "import fails": (f"{tmp_path / 'broken.py'}:build", "importing"),
        "other model": (_reference_file(tmp_path, "handwritten.torch_opaque_resnet50()"), "does not load into it"),
    }
    for case, (ref, expected) in cases.items():
        assert main(["convert", str(src), str(tmp_path / "o.pdparams"), "--reference", ref]) == 2, case
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (case, err)


def test_a_structure_no_zoo_model_has_names_the_closest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CIFAR ResNet-18 with a second Linear head: refused in one line naming the closest model and the layer
    that differs, never converted with the extra layer dropped or guessed."""
    import torch

    state = handwritten.torch_cifar_resnet18().state_dict()
    state["aux.weight"], state["aux.bias"] = torch.zeros(10, 512), torch.zeros(10)
    src = tmp_path / "two_heads.pth"
    torch.save(state, src)
    assert main(["convert", str(src), str(tmp_path / "o.pdparams")]) == 2
    err = capsys.readouterr().err
    assert "closest is resnet18 (CIFAR stem)" in err and "fc [10, 512]" in err and err.count("\n") == 1, err


# ---- d2l.ai's ResNet-18: a bias on every conv, shortcut convs without BN, BNs registered after the convs -------


def _gray(size: tuple[int, int] = (64, 96)) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((3, 1, *size)).astype("float32")


def test_d2l_resnet18_converts_into_every_framework(tmp_path: Path) -> None:
    """The book's PyTorch model (Fashion-MNIST: one channel, 10 classes) maps by structure onto resnet18 built
    with conv_bias=True and shortcut='conv_when_needed', and computes the book model's logits everywhere."""
    import torch

    model = handwritten.torch_d2l_resnet18()
    src = tmp_path / "d2l.pth"
    torch.save(model.state_dict(), src)
    x = _gray()
    _everywhere(src, _torch_out(model, x), x, tmp_path, "resnet18")
    written = tmp_path / "out-paddle.pdparams"
    spec = resolve_spec(read_checkpoint(written, format_for(written)), None)
    assert (spec.in_channels, spec.num_classes, spec.shortcut) == (1, 10, "conv_when_needed")
    assert spec.conv_bias.stem and spec.conv_bias.inner and spec.conv_bias.shortcut and spec.conv_bias.last
    ours = LOADED["torch"].create_model(spec)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in model.parameters())
    rk = LOADED["keras"]  # Keras' own load_weights (it goes by layer order) reads the written file
    keras_file = tmp_path / "out-keras.weights.h5"
    assert not [n for n in read_checkpoint(keras_file, format_for(keras_file)).notes if "order" in n]
    keras_model = rk.create_model(spec)
    keras_model.load_weights(str(keras_file))
    assert tensor_diff(_torch_out(model, x), rk.forward_numpy(keras_model, x)["logits"]).max_rel <= TOL


def test_d2l_pytorch_edition_into_the_paddle_edition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Teacher's case: the book's PyTorch model's weights, proved against the PyTorch code (--reference), written
    in the names of the book's Paddle edition (--like): the Paddle model loads them with nothing missing and
    computes the same logits."""
    import paddle
    import torch

    model = handwritten.torch_d2l_resnet18()
    src, template = tmp_path / "d2l.pth", tmp_path / "d2l_paddle.pdparams"
    torch.save(model.state_dict(), src)
    paddle.save(handwritten.paddle_d2l_resnet18().state_dict(), str(template))
    ref = _reference_file(tmp_path, "handwritten.torch_d2l_resnet18()")
    out = tmp_path / "for_paddle_edition.pdparams"
    assert main(["convert", str(src), str(out), "--reference", ref, "--like", str(template)]) == 0
    text = capsys.readouterr().out
    assert "proved against your model" in text and "conv_when_needed" in text
    book = handwritten.paddle_d2l_resnet18()
    missing, unexpected = book.set_state_dict(paddle.load(str(out)))
    assert not missing and not unexpected
    x = _gray()
    assert tensor_diff(_torch_out(model, x), _paddle_out(book.eval(), x)).max_rel <= TOL


def test_d2l_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    """conv_bias and shortcut are build options like num_classes: wrong values are one line; the shortcut of a V1
    or V2 model (projections elsewhere) cannot be changed."""
    from resnet_spec import get_spec
    from resnet_spec.errors import SpecError

    with pytest.raises(SpecError, match="conv_bias must be True or False"):
        get_spec("resnet18", conv_bias="yes")
    with pytest.raises(SpecError, match="shortcut must be one of"):
        get_spec("resnet18", shortcut="identity")
    with pytest.raises(SpecError, match="cannot be changed"):
        get_spec("resnet50v2", shortcut="conv_when_needed")
    assert not get_spec("resnet18", conv_bias=True).is_zoo_default


def test_a_zoo_entry_is_preferred_and_the_option_built_twin_is_named(tmp_path: Path) -> None:
    """keras.applications' ResNet50 (a bias on every conv) in names of one's own: read as resnet50v1, as before
    conv_bias existed; the note names resnet50 with conv_bias=True, which fits the weights as well."""
    import torch

    rt = LOADED["torch"]
    model = handwritten.randomize_torch(rt.create_model("resnet50v1", num_classes=5), 3)
    renamed = {k.replace("layer", "stage").replace("downsample", "proj"): v for k, v in model.state_dict().items()}
    src = tmp_path / "mine.pth"
    torch.save(renamed, src)
    with pytest.raises(CheckpointError, match=r"stride_on: conv1x1 .* or conv3x3"):  # v1 or v1.5? weights can't say
        convert(src, tmp_path / "out.pdparams")
    result = convert(src, tmp_path / "out.pdparams", how=MapRequest(assume={"stride_on": "conv1x1"}))
    assert result.spec.name == "resnet50v1" and result.spec.is_zoo_default is False  # num_classes=5
    assert any("also fits resnet50 (conv_bias=True)" in n for n in result.notes), result.notes


def test_d2l_paddle_edition_into_the_pytorch_edition(tmp_path: Path) -> None:
    """The other way: the book's Paddle model (``_mean``/``_variance``, Linear weight [in, out]) proved against the
    Paddle code and written in the PyTorch edition's names, which load_state_dict(strict=True) takes."""
    import paddle
    import torch

    model = handwritten.paddle_d2l_resnet18()
    src, template = tmp_path / "d2l.pdparams", tmp_path / "d2l_torch.pth"
    paddle.save(model.state_dict(), str(src))
    torch.save(handwritten.torch_d2l_resnet18().state_dict(), template)
    how = MapRequest(reference=_reference_file(tmp_path, "handwritten.paddle_d2l_resnet18()"))
    result = convert(src, tmp_path / "for_torch_edition.pth", like=template, how=how)
    assert any("proved against your model" in n for n in result.notes), result.notes
    book = handwritten.torch_d2l_resnet18()
    book.load_state_dict(torch.load(tmp_path / "for_torch_edition.pth", weights_only=True), strict=True)
    x = _gray((48, 80))
    assert tensor_diff(_paddle_out(model, x), _torch_out(book.eval(), x)).max_rel <= TOL
