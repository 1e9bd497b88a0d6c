"""The backend contract and the one safe way to load backends.

Each backend package (``resnet_torch``, ``resnet_paddle``, ``resnet_keras``, ``resnet_flax``) satisfies
:class:`Backend` as a module (mypy checks it, see :func:`_conformance`). Tools take a ``Backend``,
never a bare module, and load it lazily: converting torch -> safetensors imports neither paddle nor
TensorFlow.

paddle 3.3.1 segfaults when it is imported after TensorFlow 2.21 (measured, see docs). Anything that
needs several backends loads them through :func:`load_backends`, which imports paddle first.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.frameworks import CONVENTIONS, DESCRIPTOR_FACTS, ENGINE_FACTS, FRAMEWORKS, Descriptor
from resnet_spec.optim import OptimizerConfig
from resnet_tools.core.errors import UsageError

#: Backend names, in the order tables show them: the frameworks whose naming the spec knows.
BACKENDS = FRAMEWORKS


def known_backends() -> tuple[str, ...]:
    """The backends now (a framework record added at run time, as the fourth-framework test does, counts)."""
    return tuple(CONVENTIONS)


@functools.cache
def descriptor(name: str) -> Descriptor:
    """``resnet_<name>/descriptor.py``'s record, read without importing the backend package (whose
    ``__init__`` imports the framework): tools check installs, engines and exporters before any import."""
    if name not in CONVENTIONS:
        raise UsageError(f"unknown backend {name!r}; known: {', '.join(known_backends())}")
    package = f"resnet_{name}"
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise UsageError(f"backend {name} has no package {package} (is resnet-xf installed?)")
    path = Path(next(iter(found.submodule_search_locations))) / "descriptor.py"
    loader = importlib.util.spec_from_file_location(f"_resnet_descriptor_{name}", path)
    if loader is None or loader.loader is None or not path.is_file():
        raise UsageError(f"backend {name}: {path} is missing (every backend package declares its descriptor)")
    module = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(module)
    except TypeError as exc:  # Descriptor(...) or Engine(...) without a fact: the dataclass names it
        raise UsageError(f"backend {name}: {path} is incomplete: {exc}") from None
    record = getattr(module, "DESCRIPTOR", None)
    problems = incomplete(record, name)
    if problems:
        raise UsageError(f"backend {name}: {path} is incomplete: {'; '.join(problems)}")
    assert isinstance(record, Descriptor)
    return record


def incomplete(record: object, name: str) -> list[str]:
    """What a descriptor lacks or gets wrong, one phrase per fact (empty: complete)."""
    if not isinstance(record, Descriptor):
        return ["no DESCRIPTOR = Descriptor(...) in it"]
    problems = [f"{fact} is empty" for fact in DESCRIPTOR_FACTS if getattr(record, fact) is None and fact != "engine"]
    for fact in ("framework", "package", "module", "distribution", "extra", "model_base"):
        if not isinstance(getattr(record, fact), str) or not getattr(record, fact):
            problems.append(f"{fact} must be a non-empty string")
    if record.framework != name:
        problems.append(f"framework is {record.framework!r}, not {name!r}")
    if record.runs_on and not record.engine_env:
        problems.append("runs_on names engines but engine_env does not say how to pick one")
    if record.engine is not None:
        empty = [f for f in ENGINE_FACTS if f != "needs" and getattr(record.engine, f) in (None, "")]  # needs: optional
        problems += [f"engine.{f} is empty" for f in empty]
        if not callable(record.engine.rank_env):
            problems.append("engine.rank_env must be a function (rank, world, ports) -> environment")
    return problems


def descriptors() -> dict[str, Descriptor]:
    """Every backend's descriptor, in table order."""
    return {n: descriptor(n) for n in known_backends()}


def load_order(names: Sequence[str]) -> list[str]:
    """``names`` in the one import order that never segfaults: a framework that must come before others
    (paddle before TensorFlow) first, the rest in table order."""
    return sorted(names, key=lambda n: not descriptor(n).import_before)


#: Execution paths of eval parity and predict: each backend's ``fast_forward``, or its eager forward.
PATHS = ("fast", "eager")

Arrays = dict[str, np.ndarray]
Runner = Callable[[np.ndarray], Arrays]


class Trainer(Protocol):
    """A backend's ``Trainer``: the framework's own optimizer on one model, its state in canonical names."""

    model: Any

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]: ...
    def export_state(self) -> dict[str, np.ndarray]: ...
    def import_state(self, state: Mapping[str, np.ndarray], steps: int) -> None: ...


class MakeTrainer(Protocol):
    def __call__(self, model: Any, config: OptimizerConfig, *, device: str = ...) -> Trainer: ...


class Backend(Protocol):
    """What every backend package exports (models are the framework's own objects: ``Any`` here)."""

    FRAMEWORK: str

    @property
    def Trainer(self) -> MakeTrainer:  # noqa: N802 (the backends' class)
        """``Trainer(model, OptimizerConfig, device=...)``: the framework's own optimizer, canonical state."""
        ...

    def create_model(
        self, name: str | ModelSpec, *, num_classes: int | None = ..., dtype: str = ..., **overrides: Any
    ) -> Any: ...
    def model_spec(self, model: Any) -> ModelSpec: ...
    def export_weights(self, model: Any) -> Arrays: ...
    def import_weights(self, model: Any, weights: Mapping[str, np.ndarray], *, strict: bool = ...) -> Any: ...
    def forward_numpy(
        self, model: Any, x: np.ndarray, *, features: bool = ..., device: str = ..., amp: str | None = ...
    ) -> Arrays: ...
    def fast_forward(self, model: Any, *, features: bool = ..., device: str = ...) -> tuple[str, Runner]: ...
    def forward_blocks(self, model: Any, x: np.ndarray, *, device: str = ...) -> Arrays: ...
    def train_step_numpy(
        self, model: Any, x: np.ndarray, labels: np.ndarray, *, lr: float, device: str = ...
    ) -> dict[str, Any]: ...
    def param_counts(self, model: Any) -> tuple[int, int]: ...
    def native_shapes(self, model: Any) -> dict[str, tuple[int, ...]]: ...
    def gpu_available(self) -> bool: ...
    def amp_supported(self, device: str) -> bool: ...
    def set_tf32(self, enabled: bool) -> None: ...
    def use_all_cores(self) -> None: ...
    def release_caches(self) -> None: ...


def installed_backends() -> list[str]:
    """Backends whose framework is installed (checked without importing it)."""
    return [b for b in known_backends() if importlib.util.find_spec(descriptor(b).module) is not None]


#: Set (to "1") by the CLI unless --verbose: framework imports print nothing of their own.
QUIET_ENV_VAR = "RESNET_QUIET_IMPORTS"


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a temp file for the duration: TensorFlow's C++ logs at import time
    (absl's "before InitializeLog" lines, oneDNN notices) ignore TF_CPP_MIN_LOG_LEVEL. If the block
    raises, what was captured is written back so no error text is lost."""
    with _quiet_fds((2,)):
        yield


@contextmanager
def quiet_output() -> Iterator[None]:
    """:func:`quiet_stderr` for stdout too: exporters print their progress from Python and from C++
    (torch.onnx, paddle2onnx, tf2onnx). Replayed on stderr if the block raises."""
    with _quiet_fds((1, 2)):
        yield


@contextmanager
def _quiet_fds(fds: tuple[int, ...]) -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    with tempfile.TemporaryFile() as sink:
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


def load_submodule(backend: str, module: str) -> Any:
    """``resnet_<backend>.<module>`` (``distributed``, ``export``): the same names in every backend."""
    return importlib.import_module(f"{descriptor(backend).package}.{module}")


def load_backend(name: str) -> Backend:
    """Import one backend package by framework name (``resnet_paddle`` refuses with ImportOrderError
    instead of segfaulting when TensorFlow is already loaded)."""
    package = descriptor(name).package
    if os.environ.get(QUIET_ENV_VAR) == "1" and package not in sys.modules:
        with quiet_stderr():
            return cast(Backend, importlib.import_module(package))
    return cast(Backend, importlib.import_module(package))


def load_backends(names: Sequence[str]) -> dict[str, Backend]:
    """Import several backends in the one order that never segfaults (paddle first)."""
    unknown = [n for n in names if n not in CONVENTIONS]
    if unknown:
        raise UsageError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(known_backends())}")
    loaded = {n: load_backend(n) for n in load_order(names)}
    return {n: loaded[n] for n in names}


def use_cpu_cores(modules: Mapping[str, Backend]) -> None:
    """Every core for long CPU runs (training, evaluation): paddle's dygraph alone defaults to one thread
    (a resnet18 step on 2 cores: 4.0 s on one thread, 3.3 s on two; measured)."""
    for mod in modules.values():
        mod.use_all_cores()


def parse_backends(text: str | None, *, at_least: int = 1) -> list[str]:
    """``"torch,keras"`` -> known, installed backends (None: every installed one). One-line errors name
    the unknown or missing ones."""
    if text is None:
        names = installed_backends()
    else:
        names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        bad = [n for n in names if n not in CONVENTIONS]
        if bad:
            raise UsageError(f"unknown backend(s) {', '.join(bad)}; known: {', '.join(known_backends())}")
        missing = [n for n in names if n not in installed_backends()]
        if missing:
            extra = descriptor(missing[0]).extra
            raise UsageError(f"backend(s) not installed: {', '.join(missing)} (pip install -e '.[{extra}]')")
    if len(names) < at_least:
        raise UsageError(
            f"needs at least {at_least} backend(s); installed: {', '.join(installed_backends()) or 'none'}"
            f" (pip install -e '.[all]')"
        )
    return names


if TYPE_CHECKING:

    def _conformance() -> None:
        """mypy proves each backend package satisfies :class:`Backend` (never run)."""
        import resnet_flax
        import resnet_keras
        import resnet_paddle
        import resnet_torch

        _torch: Backend = resnet_torch
        _paddle: Backend = resnet_paddle
        _keras: Backend = resnet_keras
        _flax: Backend = resnet_flax
