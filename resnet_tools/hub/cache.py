"""Where downloaded weights live: ``$RESNET_CACHE``, else ``$XDG_CACHE_HOME/resnet-xf``, else
``~/.cache/resnet-xf``; one folder per source (``torchvision/resnet50-11ad3fa6.pth``), and
``url/<sha256 prefix>/<file>`` for plain URLs."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from resnet_spec.official import OfficialWeights

CACHE_ENV_VAR = "RESNET_CACHE"
#: A mirror serving the same files as ``MIRROR/<source>/<file>`` (air-gapped sites, internal proxies).
MIRROR_ENV_VAR = "RESNET_WEIGHTS_MIRROR"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "resnet-xf"


def cached_path(w: OfficialWeights) -> Path:
    """Where ``w`` is (or will be) in the cache."""
    return cache_dir() / w.source / w.file


def url_file_name(url: str) -> str:
    """The URL's last path part as a plain file name (``..``, ``.``, hidden or empty parts become ``download``:
    a name never leaves, or hides in, the cache folder)."""
    name = Path(unquote(urlparse(url).path)).name
    return name if name and not name.startswith(".") and "/" not in name and "\\" not in name else "download"


def url_cached_path(url: str, sha256: str) -> Path:
    """A plain URL's file in the cache, keyed by its hash (two URLs with one name never collide)."""
    return cache_dir() / "url" / sha256[:16] / url_file_name(url)


def download_url(w: OfficialWeights) -> str:
    """``w.url``, or the same file on the mirror when ``$RESNET_WEIGHTS_MIRROR`` is set."""
    mirror = os.environ.get(MIRROR_ENV_VAR)
    return f"{mirror.rstrip('/')}/{w.source}/{w.file}" if mirror else w.url
