"""Image preprocessing shared by every backend, as each family's official checkpoints expect it.

The recipes are data in ``resnet_spec/resnets.yaml`` (``preprocessing:``; each variant names one):
torchvision / paddle.vision resize the short side and center-crop, keras.applications V1 ("caffe")
uses BGR minus the ImageNet mean, V2 ("tf") scales to [-1, 1]. Output: float32 NCHW.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from resnet_spec.spec import get_preprocessing


@dataclass
class LoadedImage:
    path: Path
    array: np.ndarray | None  # CHW float32, or None when skipped
    note: str = ""  # what was converted, or why it was skipped
    rgb: np.ndarray | None = None  # HWC uint8 as shown in a grid


def _center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def preprocess(img: Image.Image, style: str) -> np.ndarray:
    """RGB PIL image -> CHW float32 by the YAML's ``style`` recipe (torchvision, caffe or tf)."""
    recipe = get_preprocessing(style)
    w, h = img.size
    if recipe.resize == "short_side":
        scale = recipe.size / min(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    else:
        img = img.resize((recipe.size, recipe.size), Image.Resampling.BILINEAR)
    x = np.asarray(_center_crop(img, recipe.crop), dtype=np.float32)
    if recipe.channels == "BGR":
        x = x[..., ::-1]
    mean, std = np.array(recipe.mean, dtype=np.float32), np.array(recipe.std, dtype=np.float32)
    x = (x / np.float32(recipe.divisor) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def load_image(path: Path | str, style: str) -> LoadedImage:
    """Open, convert to RGB where sensible, preprocess; never raises for a bad image (it is skipped)."""
    path = Path(path)
    try:
        with Image.open(path) as raw:
            raw.load()
            note = ""
            if raw.mode != "RGB":
                note = f"converted {raw.mode} to RGB"
                if raw.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: scale, don't clip at 255
                    wide = np.asarray(raw).astype(np.float64)
                    top = 65535.0 if raw.mode.startswith("I;16") or wide.max() > 255 else 255.0
                    img = Image.fromarray(np.clip(wide / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
                    note = f"converted 16-bit {raw.mode} to RGB (scaled to 8 bits)"
                elif raw.mode in ("RGBA", "LA") or (raw.mode == "P" and "transparency" in raw.info):
                    background = Image.new("RGB", raw.size, (255, 255, 255))  # flatten alpha on white
                    background.paste(raw.convert("RGBA"), mask=raw.convert("RGBA").split()[-1])
                    img = background
                else:
                    img = raw.convert("RGB")
            else:
                img = raw.copy()
    except FileNotFoundError:
        return LoadedImage(path, None, "skipped: no such file")
    except UnidentifiedImageError:
        return LoadedImage(path, None, "skipped: not an image")
    except Image.DecompressionBombError:
        return LoadedImage(
            path,
            None,
            f"skipped: over PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS:,} "
            f"pixels; raise PIL.Image.MAX_IMAGE_PIXELS if you trust it)",
        )
    except (OSError, ValueError) as exc:
        return LoadedImage(path, None, f"skipped: unreadable ({exc})")
    if min(img.size) < 1:
        return LoadedImage(path, None, "skipped: empty image")
    return LoadedImage(path, preprocess(img, style), note, np.asarray(img))
