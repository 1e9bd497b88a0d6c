"""Atomic file output: a temp file beside the target, renamed into place, so no reader ever sees a
half-written file; outputs checked before a long run; stale temp files of ours cleaned up."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from resnet_spec.errors import ResNetError
from resnet_tools.core import interrupts
from resnet_tools.core.errors import OutputError

#: Our temp files: ``.{stem}.resnet-tmp-{pid}-{random}{suffixes}`` beside the target.
TEMP_MARK = ".resnet-tmp-"
#: A temp file of ours this old is stale even if its pid is alive (reused pid, another host on NFS).
STALE_AFTER_S = 24 * 3600


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


#: Beside a file a long-running writer owns (``resnet train --save``): ``.{name}.resnet-lock``, holding its pid.
LOCK_SUFFIX = ".resnet-lock"


@contextmanager
def claimed(path: Path | str | None, what: str = "run") -> Iterator[None]:
    """Own ``path`` for the duration: a lock file beside it (created exclusively, holding this pid) that a second
    writer meets and is refused by in one line, so two runs with the same ``--save`` cannot silently replace one
    another. A lock whose pid is gone (a killed run) is stale and taken over. ``None``: nothing to claim."""
    if path is None:
        yield
        return
    target = Path(path)
    lock = target.with_name(f".{target.name}{LOCK_SUFFIX}")
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and _writer_alive(pid):
                raise OutputError(
                    f"another {what} (pid {pid}) is writing {target}; wait for it to finish or give another file "
                    f"(a stale lock of a killed run: remove {lock})"
                ) from None
            lock.unlink(missing_ok=True)  # its run is gone: the lock is stale
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror} (creating {lock.name})") from None
    else:
        raise OutputError(f"cannot claim {target}: {lock} keeps coming back; is another run starting?")
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove temp files of our naming left by a killed writer (SIGKILL, power loss): its pid is gone,
    or the file is over a day old. Other files are never touched. Returns what was removed."""
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(f".*{TEMP_MARK}*"))
    except OSError:
        return removed
    for f in candidates:
        try:
            pid = int(f.name.split(TEMP_MARK, 1)[1].split("-", 1)[0])
            stale = not _writer_alive(pid) or time.time() - f.lstat().st_mtime > STALE_AFTER_S
            if stale and f.is_file() and not f.is_symlink():
                f.unlink()
                removed.append(f)
        except (ValueError, IndexError, OSError):
            continue
    return removed


def shown_name(path: Path) -> Path:
    """The file a temp file of ours stands for (``.w.resnet-tmp-12-ab.pth`` -> ``w.pth``), for messages."""
    name = path.name
    if name.startswith(".") and TEMP_MARK in name:
        stem, _, rest = name[1:].partition(TEMP_MARK)
        suffixes = "".join(Path(rest).suffixes) if "." in rest else ""
        return path.with_name(stem + suffixes)
    return path


@contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """A writer's failure as one line naming the output (not our temp file): a full disk says so, whatever
    the library raised (torch's zip writer raises RuntimeError, h5py a long OSError). A failure after Ctrl-C or
    SIGTERM is the interruption itself, which the writer's C++ code turned into its own error."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        if isinstance(exc, ResNetError):
            raise
        if interrupts.received():
            raise KeyboardInterrupt from None
        shown = shown_name(path)
        try:
            full = shutil.disk_usage(path.parent).free < (1 << 20)
        except OSError:
            full = False
        if full or getattr(exc, "errno", None) == errno.ENOSPC:
            raise OutputError(f"cannot write {shown}: no space left on the device of {path.parent}") from None
        text = str(exc).strip().splitlines()
        raise OutputError(f"cannot write {shown}: {text[0] if text else type(exc).__name__}") from None


@contextmanager
def temp_path(path: Path) -> Iterator[Path]:
    """A temp file beside ``path`` with the same suffixes; removed unless the caller renamed it.
    Stale temp files of ours in that folder (a killed earlier run) are removed first."""
    suffix = "".join(path.suffixes) or ".tmp"
    clean_stale_temps(path.parent)
    prefix = f".{path.name.split('.')[0]}{TEMP_MARK}{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as exc:  # read-only folder, no permission, full disk
        raise OutputError(f"cannot write {path}: {exc.strerror} in {path.parent}") from None
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """Where a writer that creates a folder (or a file) for ``path`` writes it: ``path``'s name inside a temp folder
    beside it, so nothing is seen at ``path`` until :func:`publish` renames it there. The temp folder, with anything
    it still holds (a failed write, the output it replaced), is removed on the way out."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}{os.getpid()}-", dir=path.parent))
    except OSError as exc:  # read-only folder, no permission, full disk
        raise OutputError(f"cannot write {path}: {exc.strerror} in {path.parent}") from None
    try:
        yield staging / path.name
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(made: Path, path: Path) -> None:
    """Rename what :func:`staged` gave onto ``path``. An existing ``path`` (the caller checked --force and that it
    is an output of the same kind) is first moved into the staging folder, removed with it: a folder cannot be
    renamed onto a non-empty one, and this way a reader sees the old output or the new, never a mix."""
    if path.exists():
        os.replace(path, made.parent / ".replaced")
    os.replace(made, path)


def refuse_special(path: Path) -> None:
    """An existing output that is not a regular file (a device such as /dev/full, a FIFO, a socket) is never
    replaced: renaming onto it would turn the node into a file."""
    if path.exists() and not path.is_dir() and not path.is_file():
        raise OutputError(f"cannot write {path}: it exists and is not a regular file (a device or a pipe?)")


def commit(tmp: Path, path: Path, *, exclusive: bool = False) -> None:
    """Give ``tmp`` the permissions of a normally created file (mkstemp and some writers use 0600) and
    rename it onto ``path`` atomically. ``exclusive``: fail if ``path`` appeared meanwhile (another run
    writing the same new file) instead of replacing it: a hard link creates the name only if it is free."""
    refuse_special(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(
                    f"{path} was created by someone else while this run wrote it; pass --force to overwrite"
                ) from None
            except OSError:  # no hard links on this filesystem: the pre-check is all we have
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except IsADirectoryError:
        raise OutputError(f"cannot write {path}: it is a folder") from None
    except PermissionError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write through ``write(fileobj)`` to a temp file beside ``path``, then rename (no half-written file)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    with temp_path(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
        commit(tmp, path)
    return path


def check_outputs(files: Sequence[str | None], *, force: bool, report_dir: str | None = None) -> None:
    """Before a run: every output's folder exists, and nothing is overwritten without ``--force`` (a report
    folder counts as taken when it holds a parity.md). Fails in one line, not after minutes of work."""
    named = [Path(n) for n in files if n]
    resolved = [p.resolve() for p in named]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise OutputError(f"two outputs name the same file {named[i]}: give each output its own name")
    for name in files:
        if not name:
            continue
        path = Path(name)
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a folder")
        refuse_special(path)
        if not path.parent.is_dir():
            raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
        if path.exists() and not force:
            raise OutputError(f"{path} exists; pass --force to overwrite")
    if report_dir:
        folder = Path(report_dir)
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"--report {folder}: not a folder")
        if (folder / "parity.md").exists() and not force:
            raise OutputError(f"{folder} already holds a report; pass --force to overwrite")
