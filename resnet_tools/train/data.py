"""Training and evaluation data without a network: the handwritten digits that scikit-learn ships (1,797
real 8x8 scans, 10 classes) or an ImageFolder tree of the user's own (one folder per class). Loading,
preprocessing and the batch order are numpy only, deterministic and seeded: every framework sees the
same arrays in the same order, and a resumed run sees the batches the uninterrupted one would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_tools.core.errors import InputError, UsageError

DIGITS = "digits"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEST_EVERY = 5  # an ImageFolder's test split: every 5th image of each class (sorted by name)


@dataclass
class Dataset:
    name: str
    classes: list[str]
    x_train: np.ndarray  # N, C, H, W float32, preprocessed
    y_train: np.ndarray  # N int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])


def load_dataset(source: str, *, size: int = 32) -> Dataset:
    """``digits`` or a folder of class folders; one-line errors for anything else."""
    if source == DIGITS:
        return load_digits(size)
    path = Path(source)
    if not path.exists():
        raise UsageError(f"--data {source}: no such folder, and not a known dataset (known: {DIGITS})")
    return load_image_folder(path, size)


def load_digits(size: int = 32) -> Dataset:
    """scikit-learn's digits: a fixed 80/20 split (seeded permutation), each 8x8 scan (0..16) scaled up to
    ``size`` by pixel repetition, then standardised with the training split's mean and deviation."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise UsageError("--data digits needs scikit-learn (pip install -e '.[train]')") from None
    if size % 8:
        raise UsageError(f"--size must be a multiple of 8 for digits (8x8 scans), got {size}")
    raw = sk_digits()
    images = np.kron(raw.images, np.ones((size // 8, size // 8)))[:, None].astype(np.float32) / 16.0
    order = np.random.default_rng(0).permutation(len(images))
    split = int(0.8 * len(images))
    train, test = order[:split], order[split:]
    mean, std = float(images[train].mean()), float(images[train].std())
    x = (images - mean) / std
    labels = raw.target.astype(np.int64)
    return Dataset(DIGITS, [str(i) for i in range(10)], x[train], labels[train], x[test], labels[test])


def load_image_folder(path: Path, size: int) -> Dataset:
    """``path/<class>/<image>``: RGB, resized to size x size, scaled to [-1, 1]; every 5th image per class
    (sorted by name) is the test split."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise InputError(f"--data {path}: not a folder of class folders")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(f"--data {path}: needs at least two class folders, found {len(classes)}")
    xs: list[list[np.ndarray]] = [[], []]
    ys: list[list[int]] = [[], []]
    for label, name in enumerate(classes):
        files = sorted(f for f in (path / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(
                f"--data {path}: class folder {name!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        for i, f in enumerate(files):
            try:
                with Image.open(f) as img:
                    rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise InputError(f"--data {path}: cannot read {f.relative_to(path)}: {exc}") from None
            part = 1 if i % TEST_EVERY == TEST_EVERY - 1 else 0
            xs[part].append(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
            ys[part].append(label)
    if not xs[1]:
        raise InputError(f"--data {path}: too few images for a test split (every {TEST_EVERY}th image of a class)")
    return Dataset(str(path), classes, np.stack(xs[0]), np.array(ys[0], dtype=np.int64),
                   np.stack(xs[1]), np.array(ys[1], dtype=np.int64))  # fmt: skip


def batches(labels_count: int, batch: int, seed: int, start: int = 0) -> Iterator[np.ndarray]:
    """Indices of each training batch, from step ``start`` on: a seeded permutation per epoch, the last
    partial batch dropped. The same seed gives the same sequence, so a resumed run continues it."""
    if batch > labels_count:
        raise UsageError(f"--batch {batch} is larger than the training set ({labels_count} images)")
    per_epoch = labels_count // batch
    step = start
    while True:
        epoch, within = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(labels_count)
        yield order[within * batch : (within + 1) * batch]
        step += 1
