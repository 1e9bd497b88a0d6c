"""Verified downloads into the cache: streamed to a temp file beside the target with a progress bar,
hashed on the way, renamed into place only when the hash matches. Nothing unverified ever sits under a
cache name, and two processes fetching one file download it once (a lock file; the second waits, then
finds the file)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from resnet_spec.errors import ResNetError
from resnet_tools.core.files import commit, temp_path

CHUNK = 1 << 20
#: Attempts for transient failures (connection errors, truncated transfers, HTTP 5xx/429).
ATTEMPTS = 3
TIMEOUT_ENV_VAR = "RESNET_DOWNLOAD_TIMEOUT"  # seconds without a byte before a connection is given up
DEFAULT_TIMEOUT_S = 30.0
LOCK_WAIT_S = 3600.0  # the longest one process waits for another's download of the same file
USER_AGENT = "resnet-xf (+weights download)"


class DownloadError(ResNetError):
    """A download failed or did not match its published hash; nothing was cached."""


class _TransientError(Exception):
    """Worth another attempt: the connection, not the file, was the problem."""


@dataclass(frozen=True)
class Expected:
    """The hash a file must have: a full sha256, torchvision's 8-hex sha256 prefix, or an md5."""

    sha256: str | None = None
    md5: str | None = None

    def check(self, sha256: str, md5: str) -> str | None:
        """None when the digests match, else what was expected and what came."""
        if self.sha256 and not sha256.startswith(self.sha256):
            return f"its sha256 is {sha256[: len(self.sha256)]}..., the published one {self.sha256}"
        if self.md5 and md5 != self.md5:
            return f"its md5 is {md5}, the published one {self.md5}"
        return None


def hash_file(path: Path) -> tuple[str, str]:
    """(sha256, md5) hex digests of a file, read in chunks."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def _prepare(target: Path) -> None:
    """The cache folder exists and is writable, or one line saying where to put the cache instead."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(f".{target.name}.lock"), "a"):
            pass
    except OSError as exc:
        raise DownloadError(
            f"cannot write the weights cache {target.parent}: {exc.strerror}; set RESNET_CACHE to a writable folder"
        ) from None


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """An exclusive lock on ``.<name>.lock`` beside ``target`` (released when the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic rename still keeps the cache consistent
        yield
        return
    with open(target.with_name(f".{target.name}.lock"), "a") as fh:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DownloadError(
                        f"another process has been downloading {target.name} for over {LOCK_WAIT_S:.0f}s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV_VAR, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _stream(url: str, out: IO[bytes], label: str, progress: bool) -> tuple[str, str]:
    """GET ``url`` into ``out``; returns (sha256, md5). Raises _TransientError or DownloadError."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(request, timeout=_timeout()) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            console = Console(stderr=True)
            with Progress(*columns, console=console, transient=True, disable=not progress) as bar:
                task = bar.add_task(f"downloading {label}", total=total)
                received = 0
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.advance(task, len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # refused, reset, timed out
        reason = getattr(exc, "reason", None) or exc
        raise _TransientError(f"{type(exc).__name__}: {reason}".removeprefix("URLError: ")) from None
    if total is not None and received != total:
        raise _TransientError(f"transfer cut short: {received:,} of {total:,} bytes")
    return sha.hexdigest(), md5.hexdigest()


def download(
    url: str,
    target: Path,
    expected: Expected,
    *,
    label: str,
    progress: bool = True,
    attempts: int = ATTEMPTS,
    offline_hint: str = "",
) -> Path:
    """Fetch ``url`` to ``target`` unless it is there; verified against ``expected`` before it gets the
    name. Transient failures are retried; a wrong hash or an HTTP 4xx is not. One-line errors;
    ``offline_hint`` (how to place the file by hand) ends the line when the network failed."""
    _prepare(target)
    with _locked(target):
        if target.is_file():  # another process fetched it while this one waited
            return target
        problem = ""
        for attempt in range(1, attempts + 1):
            with temp_path(target) as tmp:
                try:
                    with open(tmp, "wb") as out:
                        sha256, md5 = _stream(url, out, label, progress)
                except _TransientError as exc:
                    problem = str(exc)
                    if attempt < attempts:
                        time.sleep(0.5 * attempt)
                    continue
                except DownloadError as exc:
                    raise DownloadError(f"cannot download {label} from {url}: {exc}") from None
                mismatch = expected.check(sha256, md5)
                if mismatch:
                    raise DownloadError(
                        f"{label} from {url} is not the published file ({mismatch}); nothing was cached"
                    )
                commit(tmp, target)
                return target
        raise DownloadError(
            f"cannot download {label} from {url} after {attempts} attempts: {problem}"
            + (f"; {offline_hint}" if offline_hint else "")
        )


def place(source: Path, target: Path, expected: Expected, *, label: str) -> Path:
    """Copy a file fetched by hand into the cache, verified like a download."""
    if not source.is_file():
        raise DownloadError(f"cannot read {source}: {'not a file' if source.exists() else 'no such file'}")
    mismatch = expected.check(*hash_file(source))
    if mismatch:
        raise DownloadError(f"{source} is not the published file of {label} ({mismatch}); nothing was cached")
    _prepare(target)
    with _locked(target), temp_path(target) as tmp:
        shutil.copyfile(source, tmp)
        commit(tmp, target)
    return target
