"""The predict wing: preprocessing per family, the same top-k in every backend, bad images and options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.formats import FORMATS, Checkpoint, write_checkpoint
from resnet_tools.cli import main
from resnet_tools.core.backends import PATHS
from resnet_tools.predict.preprocess import load_image
from resnet_tools.predict.run import predict


def _images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, (shape, mode) in enumerate(
        [((300, 420, 3), "RGB"), ((97, 131, 3), "RGB"), ((200, 180), "L"), ((240, 240, 4), "RGBA")]
    ):
        p = folder / f"img{i}_{mode}.png"
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(p)
        paths.append(p)
    palette = folder / "palette.gif"
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).convert("P").save(palette)
    junk = folder / "junk.jpg"
    junk.write_text("not an image")
    truncated = folder / "truncated.png"
    truncated.write_bytes(paths[0].read_bytes()[:200])
    return [*paths, palette, junk, truncated, folder / "missing.png"]


@pytest.mark.parametrize("name", ["resnet18", "resnet50v1", "resnet50v2"])
def test_predict_same_topk_in_every_backend(name: str, tmp_path: Path) -> None:
    if len(LOADED) < 3:
        pytest.skip("needs all three backends")
    spec = get_spec(name, num_classes=10)
    ckpt = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(random_weights(spec, seed=4)), spec, ckpt, FORMATS["safetensors"])
    images = [str(p) for p in _images(tmp_path)]
    tops, probs = {}, {}
    for b in LOADED:
        for path in PATHS:
            run = predict(images, str(ckpt), backend=b, topk=3, path=path)
            assert run.backend == b and (run.path == "eager") == (path == "eager")
            tops[b, path] = [[i for i, _l, _p in r.top] for r in run.predictions]
            probs[b, path] = np.array([[p for _i, _l, p in r.top] for r in run.predictions if r.top])
            assert all(0 < p[0] <= 1 and list(p) == sorted(p, reverse=True) for p in probs[b, path])
    assert len(set(map(str, tops.values()))) == 1  # same top-3 in every backend on every path
    assert [bool(t) for t in tops["torch", "eager"]] == [True] * 5 + [False] * 3  # 5 readable, 3 skipped
    bound = tolerance("float32", "cpu", "eval").rel  # probabilities are on a [0, 1] scale: an absolute bound
    for key in probs:
        np.testing.assert_allclose(probs[key], probs["torch", "eager"], rtol=0, atol=bound)


def test_odd_images_are_converted_or_skipped(tmp_path: Path) -> None:
    notes = {p.name: load_image(p, "torchvision") for p in _images(tmp_path)}
    assert notes["img2_L.png"].note == "converted L to RGB" and notes["img2_L.png"].array.shape == (3, 224, 224)
    assert notes["img3_RGBA.png"].note == "converted RGBA to RGB"
    assert notes["palette.gif"].array is not None
    assert notes["junk.jpg"].array is None and "not an image" in notes["junk.jpg"].note
    assert notes["truncated.png"].array is None and "skipped" in notes["truncated.png"].note
    assert notes["missing.png"].note == "skipped: no such file"


def test_preprocessing_styles(tmp_path: Path) -> None:
    p = tmp_path / "white.png"
    Image.new("RGB", (300, 250), (255, 255, 255)).save(p)
    tv, caffe, tf = (load_image(p, s).array for s in ("torchvision", "caffe", "tf"))
    np.testing.assert_allclose(
        tv[:, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), rtol=1e-5
    )
    np.testing.assert_allclose(caffe[:, 0, 0], 255 - np.array([103.939, 116.779, 123.68]), rtol=1e-5)  # BGR
    np.testing.assert_allclose(tf, 1.0)


def test_predict_cli_with_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = get_spec("resnet18", num_classes=4)
    ckpt = tmp_path / "w.npz"
    write_checkpoint(Checkpoint(random_weights(spec, seed=1)), spec, ckpt, FORMATS["npz"])
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nfox\nowl\n")
    imgs = [str(p) for p in _images(tmp_path)[:2]]
    grid = tmp_path / "grid.png"
    assert (
        main(["predict", *imgs, "--weights", str(ckpt), "--labels", str(labels), "--topk", "2", "--grid", str(grid)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("  1. ") == 2 and any(lbl in out for lbl in ("cat", "dog", "fox", "owl")) and "mean" in out
    assert "path: " in out and "path: eager" not in out  # the fast path by default, named
    assert grid.read_bytes()[:4] == b"\x89PNG"


def test_sixteen_bit_and_bomb_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16-bit grayscale is scaled to 8 bits (not clipped at 255); an image over PIL's decompression-bomb
    limit is skipped with a note instead of failing the whole batch."""
    wide = tmp_path / "wide.png"
    ramp = np.linspace(0, 65535, 64 * 96).reshape(64, 96).astype(np.uint16)
    Image.fromarray(ramp).save(wide)
    loaded = load_image(wide, "tf")
    assert "scaled to 8 bits" in loaded.note
    assert (loaded.rgb == 255).mean() < 0.01 and 120 < loaded.rgb.mean() < 135  # a ramp, not 99.6% white
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 90,000 pixels > 2x the limit: a bomb
    skipped = load_image(big, "tf")
    assert skipped.array is None and "decompression-bomb" in skipped.note


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--topk", "0"], "--topk must be between 1 and 4"),
        (["--topk", "-3"], "--topk must be between 1 and 4"),
        (["--topk", "5000"], "--topk must be between 1 and 4"),
        (["--labels", "LATIN1"], "not UTF-8 text"),
    ],
)
def test_predict_bad_options(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = get_spec("resnet18", num_classes=4)
    ckpt = tmp_path / "w.npz"
    write_checkpoint(Checkpoint(random_weights(spec, seed=1)), spec, ckpt, FORMATS["npz"])
    (tmp_path / "LATIN1").write_bytes("chat\nchien\nrenard\nhibou\xe9\n".encode("latin-1"))
    argv = [str(tmp_path / a) if a == "LATIN1" else a for a in argv]
    img = _images(tmp_path)[1]
    assert main(["predict", str(img), "--weights", str(ckpt), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err, err


def test_predict_says_how_many_were_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = get_spec("resnet18", num_classes=4)
    ckpt = tmp_path / "w.npz"
    write_checkpoint(Checkpoint(random_weights(spec, seed=1)), spec, ckpt, FORMATS["npz"])
    images = _images(tmp_path)  # 5 readable, 3 bad
    assert main(["predict", *map(str, images), "--weights", str(ckpt), "--path", "eager"]) == 0
    out, err = capsys.readouterr()
    assert "3 of 8 image(s) skipped" in err and "skipped" not in out  # errors go to stderr
    bad = [str(p) for p in images[-3:]]
    assert main(["predict", *bad, "--weights", str(ckpt), "--path", "eager"]) == 2


def test_a_cifar_stem_model_predicts_at_32(tmp_path: Path) -> None:
    """A model built with the CIFAR stem sees 32x32 images (the YAML's cifar recipe), not 224x224."""
    from resnet_tools.predict.run import predict

    spec = get_spec("resnet18", num_classes=4, stem="cifar")
    ckpt = tmp_path / "w.npz"
    write_checkpoint(Checkpoint(random_weights(spec, seed=1)), spec, ckpt, FORMATS["npz"])
    run = predict([str(_images(tmp_path)[0])], str(ckpt), path="eager")
    assert run.preprocessing == "cifar" and run.predictions[0].image.array.shape == (3, 32, 32)
