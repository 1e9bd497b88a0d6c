"""What a ``--weights`` / source argument names: a local file, an official id
(``torchvision:resnet50.IMAGENET1K_V2``, fetched into the cache on first use) or an ``https://`` URL
with its ``--sha256``. Every command that reads a checkpoint goes through :func:`resolve_weights`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from resnet_spec.errors import SpecError
from resnet_spec.official import OfficialWeights, get_official, looks_like_id
from resnet_tools.hub.cache import MIRROR_ENV_VAR, cached_path, download_url, url_cached_path, url_file_name
from resnet_tools.hub.download import DownloadError, Expected, download, place

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LocalWeights:
    """A checkpoint on disk, and the official entry it came from (None for a plain file or URL)."""

    path: Path
    official: OfficialWeights | None = None

    @property
    def model(self) -> str | None:
        return self.official.model if self.official else None

    @property
    def format(self) -> str | None:
        return self.official.format if self.official else None

    @property
    def preprocessing(self) -> str | None:
        return self.official.preprocessing if self.official else None

    def metadata(self) -> dict[str, str]:
        """What a converted file records about where its weights came from (formats with metadata)."""
        if self.official is None:
            return {}
        return {"weights_id": self.official.id, "preprocessing": self.official.preprocessing}


def is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def fetch_official(w: OfficialWeights, *, progress: bool = True) -> Path:
    """``w`` in the cache, downloaded and verified on first use."""
    target = cached_path(w)
    if target.is_file():
        return target
    url = download_url(w)
    hint = (
        f"without network, fetch that file elsewhere and run `resnet fetch {w.id} --file FILE` (checks its "
        f"hash), or set {MIRROR_ENV_VAR} to a mirror"
    )
    return download(url, target, Expected(w.sha256, w.md5), label=w.id, progress=progress, offline_hint=hint)


def place_official(w: OfficialWeights, file: Path | str) -> Path:
    """A file of ``w`` fetched by hand, verified and put where the cache keeps it."""
    return place(Path(file), cached_path(w), Expected(w.sha256, w.md5), label=w.id)


def fetch_url(url: str, sha256: str | None, *, progress: bool = True) -> Path:
    if sha256 is None:
        raise DownloadError(f"a URL needs its hash: pass --sha256 HEX (64 hex digits) with {url}")
    sha256 = sha256.lower()
    if not _SHA256.match(sha256):
        raise DownloadError(f"--sha256 must be 64 hex digits (a full SHA-256), got {sha256!r}")
    target = url_cached_path(url, sha256)
    if target.is_file():
        return target
    return download(url, target, Expected(sha256=sha256), label=url_file_name(url), progress=progress)


def resolve_weights(ref: str, *, sha256: str | None = None, progress: bool = True) -> LocalWeights:
    """A local path as it is; an official id or a URL fetched into the cache (verified) first."""
    if is_url(ref):
        return LocalWeights(fetch_url(ref, sha256, progress=progress))
    if Path(ref).exists() or not looks_like_id(ref):
        if sha256 is not None:
            raise SpecError("--sha256 goes with an https:// URL; a local file or an official id needs none")
        return LocalWeights(Path(ref))
    if sha256 is not None:
        raise SpecError(f"--sha256 goes with an https:// URL; {ref} carries its published hash")
    w = get_official(ref)
    return LocalWeights(fetch_official(w, progress=progress), w)
