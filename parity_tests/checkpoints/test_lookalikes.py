"""Look-alikes: ResNets with the same tensors as a zoo model that compute differently (the stride's place, the stem
pool's padding). Each file here is one a user or another tool wrote (timm's resnetv2 layout, Hugging Face's
``save_pretrained``, a state dict saved with safetensors, a model whose blocks are no modules), and each converted
result is compared with the user's own model in its own framework: it converts exactly where names or the user's
code decide, and is refused in one line where nothing does; never converted silently onto the wrong look-alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity_tests import handwritten
from parity_tests.conftest import LOADED
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.convert import convert, inspect_checkpoint
from resnet_tools.checkpoints.formats import format_for, read_checkpoint
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff

TOL = tolerance("float32", "cpu", "eval").rel
EXT = {"torch": ".pth", "paddle": ".pdparams", "keras": ".weights.h5"}

pytestmark = pytest.mark.skipif(len(LOADED) < 3, reason="needs torch, paddle and keras")


def _x(size: tuple[int, int] = (64, 96), batch: int = 2) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((batch, 3, *size)).astype("float32")


def _torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(x))
    return np.asarray(getattr(out, "logits", out).numpy())


def _reference_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "my_model.py"
    path.write_text(f"from parity_tests import handwritten\n\n\ndef build():\n    return {body}\n")
    return f"{path}:build"


def _save_safetensors(state: dict[str, Any], path: Path) -> None:
    """As timm and Hugging Face write ``model.safetensors``: the torch state dict, BN batch counters included."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def _everywhere(src: Path, expected: np.ndarray, x: np.ndarray, tmp_path: Path, how: MapRequest = PLAIN) -> Any:
    """Convert ``src`` into each framework's file, build the model the conversion names (its spec, look-alike
    settings included), load the file, and compare with the user's logits; the spec."""
    spec = None
    for fw, ext in EXT.items():
        dst = tmp_path / f"out-{fw}{ext}"
        result = convert(src, dst, how=how, force=True)
        spec = result.spec
        ckpt = read_checkpoint(dst, format_for(dst))
        mod = LOADED[fw]
        got = mod.forward_numpy(mod.import_weights(mod.create_model(spec), ckpt.weights), x)["logits"]
        assert tensor_diff(expected, got).max_rel <= TOL, fw
    return spec


def test_timm_resnetv2_names_decide_the_stride_and_the_pool(tmp_path: Path) -> None:
    """timm's resnetv2 layout (stride in each stage's first block, -inf stem pool) as ``model.safetensors`` with
    torch's BN counters: its names settle both, with no code; every framework computes the user's logits."""
    model = handwritten.torch_timm_style_resnetv2_50()
    src = tmp_path / "model.safetensors"
    _save_safetensors(model.state_dict(), src)
    x = _x(batch=3)
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path)
    assert (spec.name, spec.stride_block, spec.stem.pool_pad, spec.stage_strides) == (
        "resnet50v2", "first", "neg_inf", (1, 2, 2, 2)
    )  # fmt: skip
    notes = read_checkpoint(src, format_for(src)).notes
    assert any("as the names say: timm's resnetv2" in n and "stride_block=first" in n for n in notes), notes
    assert any("BN batch counter" in n for n in notes), notes


def test_timm_layout_under_other_names_is_refused_then_proved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same architecture under names of one's own: the weights fit resnet50v2's and its look-alikes alike, so
    without code it is refused (exit 2, one line, nothing written); --reference runs the user's model (its norms
    are BatchNorm2d subclasses, as timm's BatchNormAct2d) and proves the first-block stride and -inf pool."""
    import torch

    model = handwritten.torch_timm_style_resnetv2_50(opaque=True)
    src = tmp_path / "mine.pth"
    torch.save(model.state_dict(), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "stride_block: last" in err and "first" in err and "pool_pad" in err and "--reference" in err, err
    assert err.count("\n") == 1 and not dst.exists()
    ref = _reference_file(tmp_path, "handwritten.torch_timm_style_resnetv2_50(opaque=True)")
    x = _x((65, 97))
    spec = _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=ref))
    assert (spec.stride_block, spec.stem.pool_pad) == ("first", "neg_inf")


def test_an_assumption_the_user_states_wrongly_is_their_word(tmp_path: Path) -> None:
    """--assume is the user's word, not a proof: stated wrongly (last-block stride for timm's layout), the file
    converts onto that look-alike, and the notes say it was assumed, not proved; --reference would refuse it."""
    import torch

    model = handwritten.torch_timm_style_resnetv2_50(opaque=True)
    src = tmp_path / "mine.pth"
    torch.save(model.state_dict(), src)
    how = MapRequest(assume={"stride_block": "last", "pool_pad": "neg_inf", "stride_on": "conv3x3"})
    result = convert(src, tmp_path / "out.pdparams", how=how)
    assert any("settled as you said (--assume): stride_block=last" in n for n in result.notes), result.notes
    ckpt = read_checkpoint(tmp_path / "out.pdparams", format_for(tmp_path / "out.pdparams"))
    rp = LOADED["paddle"]
    got = rp.forward_numpy(rp.import_weights(rp.create_model(result.spec), ckpt.weights), _x())["logits"]
    assert tensor_diff(_torch_out(model, _x()), got).max_rel > 100 * TOL  # the wrong word gives other numbers


def test_a_look_alike_keeps_its_settings_through_our_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """timm's layout -> our .safetensors (the settings in its metadata) -> .pdparams with --verify: read back as the
    look-alike, not as keras.applications' resnet50v2; inspect names the settings."""
    model = handwritten.torch_timm_style_resnetv2_50()
    src, ours, out = tmp_path / "model.safetensors", tmp_path / "ours.safetensors", tmp_path / "out.pdparams"
    _save_safetensors(model.state_dict(), src)
    convert(src, ours)
    assert inspect_checkpoint(ours).spec.stride_block == "first"
    assert main(["convert", str(ours), str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "stride_block='first'" in text and "pool_pad='neg_inf'" in text and "only --reference proves" in text
    x = _x()
    rp = LOADED["paddle"]
    spec = convert(ours, tmp_path / "again.pth").spec
    got = rp.forward_numpy(rp.import_weights(rp.create_model(spec), read_checkpoint(out, format_for(out)).weights), x)
    assert tensor_diff(_torch_out(model, x), got["logits"]).max_rel <= TOL


def test_hugging_face_save_pretrained_converts_by_its_names(tmp_path: Path) -> None:
    """transformers' ResNetForImageClassification.save_pretrained (model.safetensors, HF's names, BN counters):
    its names settle the stride's place (downsample_in_bottleneck=False); every framework computes HF's logits."""
    pytest.importorskip("transformers", reason="dev extra: Hugging Face transformers")
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(layer_type="bottleneck", depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048],
                          embedding_size=64, num_labels=4)  # fmt: skip
    hf = handwritten.randomize_torch(ResNetForImageClassification(config), 13)
    hf.save_pretrained(tmp_path / "hf")
    src = tmp_path / "hf" / "model.safetensors"
    x = _x((61, 83))
    spec = _everywhere(src, _torch_out(hf, x), x, tmp_path)
    assert spec.name == "resnet50" and spec.stride_on == "conv3x3" and spec.num_classes == 4


def test_torchvision_named_safetensors_with_counters_convert_bitwise(tmp_path: Path) -> None:
    """A torchvision-named state dict saved with safetensors (timm's resnet50, BN counters as int64 scalars): read
    by the zoo's names, written to .pth with the same bytes."""
    import torch

    rt = LOADED["torch"]
    model = handwritten.randomize_torch(rt.create_model("resnet50", num_classes=9), 14)
    src, dst = tmp_path / "model.safetensors", tmp_path / "out.pth"
    _save_safetensors(model.state_dict(), src)
    assert convert(src, dst, verify=True).spec.name == "resnet50"
    back = torch.load(dst, weights_only=True)
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(back[key], value), key


def test_blocks_that_are_no_modules_are_refused_without_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ResNet-18 whose layers sit in one flat list: the blocks cannot be cut by names, so nothing is assumed (exit
    2, one line); its code maps it by running it, and the result computes the user's logits."""
    import torch

    model = handwritten.torch_flat_resnet18()
    src = tmp_path / "flat.pth"
    torch.save(model.state_dict(), src)
    dst = tmp_path / "out.pdparams"
    assert main(["convert", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "not the contents of one module" in err and "--reference" in err and err.count("\n") == 1, err
    assert not dst.exists()
    ref = _reference_file(tmp_path, "handwritten.torch_flat_resnet18()")
    x = _x((48, 72))
    _everywhere(src, _torch_out(model, x), x, tmp_path, MapRequest(reference=ref))


def test_a_map_file_with_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--map with --verify: the map describes the source, the verification reads the written file by its names."""
    import torch

    model = handwritten.torch_cifar_resnet18()
    src, map_file, dst = tmp_path / "cifar.pth", tmp_path / "map.yaml", tmp_path / "out.pdparams"
    torch.save(model.state_dict(), src)
    assert main(["map", str(src), "--save", str(map_file)]) == 0
    assert main(["convert", str(src), str(dst), "--map", str(map_file), "--verify"]) == 0
    assert "verified" in capsys.readouterr().out


def test_bad_assumptions_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    src = tmp_path / "cifar.pth"
    torch.save(handwritten.torch_cifar_resnet18().state_dict(), src)
    for bad, expected in (("stride_on", "KEY=VALUE"), ("stride=first", "unknown assumption 'stride'"),
                          ("pool_pad=max", "pool_pad is one of zero, neg_inf")):  # fmt: skip
        assert main(["convert", str(src), str(tmp_path / "o.pth"), "--assume", bad]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err


def _trained_like(model: Any) -> Any:
    """Weights as training leaves them (He-scaled kernels, BN statistics and biases of both signs), seeded."""
    rng = np.random.default_rng(21)
    for layer in model.layers:
        for v in layer.weights:
            shape, name = tuple(v.shape), v.path.rsplit("/", 1)[-1]
            if name == "kernel":
                value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
            elif name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0, 0.2, shape)
            v.assign(value.astype("float32"))
    return model


def test_a_hand_written_keras_model_converts_by_its_code(tmp_path: Path) -> None:
    """A functional Keras ResNet-18 of a tutorial (Keras' own layer names, conv2d_7 ...) saved with save_weights:
    --reference builds it, Keras' own loader reads its file into it, the graph's additions give its blocks, and the
    result computes the user's logits in every framework (every block proved too)."""
    model = _trained_like(handwritten.keras_cifar_resnet18(num_classes=7))
    src = tmp_path / "tutorial.weights.h5"
    model.save_weights(src)
    ref = _reference_file(tmp_path, "handwritten.keras_cifar_resnet18(num_classes=7)")
    x = _x((32, 40))
    import keras

    expected = np.asarray(keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False)))
    spec = _everywhere(src, expected, x, tmp_path, MapRequest(reference=ref))
    assert spec.name == "resnet18" and spec.stem.kind == "cifar" and spec.num_classes == 7
    notes = read_checkpoint(src, format_for(src), how=MapRequest(reference=ref)).notes
    assert any("every block and the logits" in n for n in notes), notes


def test_a_keras_file_that_is_not_the_models_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = handwritten.keras_cifar_resnet18(num_classes=7)
    src = tmp_path / "tutorial.weights.h5"
    model.save_weights(src)
    ref = _reference_file(tmp_path, "handwritten.keras_cifar_resnet18(num_classes=3)")  # another head
    assert main(["convert", str(src), str(tmp_path / "o.pth"), "--reference", ref]) == 2
    err = capsys.readouterr().err
    assert "does not load into it" in err and err.count("\n") == 1, err
