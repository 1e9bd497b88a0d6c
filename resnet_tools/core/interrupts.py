"""Ctrl-C and SIGTERM as one KeyboardInterrupt, remembered: a library that calls back into Python from C++
(torch's zip writer, h5py) turns the KeyboardInterrupt raised in its callback into its own error, so a
writer's failure is reported as "interrupted" (exit 130) whenever a signal arrived, not as a write error."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | None

_received: list[int] = []


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived while :func:`handled` was in force."""
    return bool(_received)


def _raise(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM (a killed CI job, ``timeout``) unwind like Ctrl-C, so temp files are removed on the
    way out, and are remembered for :func:`received`. Nothing is installed outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
