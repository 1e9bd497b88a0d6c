"""``--reference FILE.py:CALLABLE``: map a checkpoint by running the user's own model, then prove the conversion.

The callable (a class or a factory taking no arguments) builds the user's torch ``nn.Module`` or paddle
``nn.Layer``; this imports and runs the user's file, which they named (a checkpoint is never executed). The
checkpoint is loaded into it, and one forward pass on a seeded batch (H != W) records, through hooks, the
order in which its convs, BNs and Linear layers run and which tensor each reads. The mapping then follows
the execution: a BN belongs to the conv whose output it reads, the shortcut conv reads what the block's first
conv reads, the main path runs in order. Nothing depends on names.

The proof: the zoo model with the converted weights runs the same batch; its stem, every block's output and
the logits are compared with the user's model's. Above the parity tolerance the conversion fails (exit 1,
nothing written), naming the first block that differs: an architectural difference (a max-pool padding with
-inf where the zoo's pads with zeros, a head that pools otherwise) is reported as such, never passed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError, VerificationError
from resnet_spec.lookalikes import assumed, differences, variants
from resnet_spec.plan import block_names
from resnet_spec.spec import is_zoo_model
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.run_facts import read_off_run
from resnet_tools.checkpoints.structure import (
    Flow,
    StructureMap,
    Trace,
    Unit,
    common_prefix,
    fitting_specs,
    map_units,
    units_of,
)
from resnet_tools.core.backends import descriptor, load_submodule
from resnet_tools.core.diffs import tensor_diff, within

#: How long one step of the user's code (importing the file, building the model, one forward pass) may take.
USER_CODE_SECONDS = 600.0


class _Expired(BaseException):  # not an Exception: the user's ``except Exception`` does not swallow it
    pass


@contextmanager
def users_code(what: str) -> Iterator[None]:
    """A step of the user's code: its ``sys.exit()`` is an error, not our exit status; past
    :data:`USER_CODE_SECONDS` it is stopped (SIGALRM, where this runs in the main thread). One line each."""
    timed = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    previous: Any = None
    if timed:

        def expired(_signum: int, _frame: Any) -> None:
            raise _Expired

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, USER_CODE_SECONDS)
    try:
        yield
    except SystemExit as exc:
        raise CheckpointError(
            f"--reference: your code called sys.exit({exc.code!r}) while {what}; nothing written"
        ) from None
    except _Expired:
        raise CheckpointError(
            f"--reference: your code did not return within {USER_CODE_SECONDS:g} s while {what}; nothing written"
        ) from None
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def load_callable(text: str) -> Any:
    """``path/to/file.py:Name`` -> the object ``Name`` of that file (the file is run as a module)."""
    file, sep, name = text.rpartition(":")
    if not sep or not file.endswith(".py") or not name.isidentifier():
        raise CheckpointError(f"--reference {text!r}: give FILE.py:CALLABLE (a class or function of your model file)")
    path = Path(file)
    if not path.is_file():
        raise CheckpointError(f"--reference: no such file {path}")
    module_name = f"resnet_reference_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CheckpointError(f"--reference: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))  # its own imports of files beside it
    try:
        sys.modules[module_name] = module
        with users_code(f"importing {path}"):
            spec.loader.exec_module(module)
    except Exception as exc:
        raise CheckpointError(f"--reference: importing {path} failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    if not callable(getattr(module, name, None)):
        raise CheckpointError(f"--reference: {path} has no callable {name!r}")
    return getattr(module, name)


def read_through_model(path: Path, framework: str, ref: str) -> tuple[dict[str, np.ndarray], Any]:
    """A file only its own model can read (a hand-written Keras model's ``.weights.h5`` numbers its layers by that
    model's order): the user's model, built from their code, loads it with the framework's own loader (weights
    only, nothing in the file runs): its weights as the backend's ``foreign`` module presents them, and the model
    (Keras names a model's layers anew each time one is built: the mapping runs this one)."""
    foreign = load_submodule(framework, "foreign")
    if not hasattr(foreign, "load_file"):
        raise CheckpointError(f"--reference: a {framework} file of this kind is read by its names, not by a model")
    user = _build(ref, framework)
    try:
        with users_code(f"loading {path} into it"):
            foreign.load_file(user, path)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"--reference {ref}: {path} does not load into it ({reason[:200]}); is it the model the file was saved "
            f"from?"
        ) from None
    named: dict[str, np.ndarray] = foreign.state_numpy(user)
    return named, user


def _build(ref: str, framework: str) -> Any:
    factory = load_callable(ref)
    try:
        with users_code("building your model"):
            model = factory()
    except Exception as exc:
        raise CheckpointError(f"--reference {ref}: calling it failed: {type(exc).__name__}: {exc}") from None
    if not load_submodule(framework, "foreign").is_model(model):
        expected = descriptor(framework).model_base
        raise CheckpointError(f"--reference {ref} returned a {type(model).__name__}, not a {expected}")
    return model


def _load(model: Any, framework: str, native: Mapping[str, Any], ref: str) -> None:
    missing, unexpected = load_submodule(framework, "foreign").load_state(model, native)
    if missing or unexpected:
        raise CheckpointError(
            f"--reference {ref}: the checkpoint does not load into it: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]} (is it the model the checkpoint was saved from?)"
        )


def trace(model: Any, framework: str, x: np.ndarray, into: Trace | None = None) -> Trace:
    """Run ``model`` once on ``x``, watching every layer (``into``: the trace to fill, kept by a caller that wants
    to know how far a failing pass got)."""
    foreign = load_submodule(framework, "foreign")
    t = into if into is not None else Trace(x=x)
    keep: list[Any] = []  # every recorded tensor stays alive, so no id is reused during the pass
    named = foreign.named_layers(model)

    def record(path: str, first: Any, output: Any) -> None:
        keep.extend([first, output])
        if any(c.__name__ in foreign.LAYER_TYPES for c in type(named[path]).__mro__):  # subclasses too (timm's)
            if path in t.reads:
                raise CheckpointError(f"--reference: layer {path} runs twice in one pass; the zoo runs each once")
            t.order.append(path)
            t.reads[path], t.writes[path] = id(first), id(output)
        if hasattr(output, "shape"):
            t.module_out[path] = foreign.to_numpy(output)
        if hasattr(first, "shape") and path not in t.module_in:
            t.module_in[path] = foreign.to_numpy(first)

    try:
        with users_code(f"running your model on a {list(x.shape)} batch"):
            t.logits = foreign.run_watched(model, x, record)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"--reference: your model failed on a {list(x.shape)} batch: {exc}") from None
    return t


def followed(units: Sequence[Unit], t: Trace) -> tuple[list[Unit], Flow]:
    """The units in the order they ran, and the flow the run showed (which conv each BN reads from); a unit
    that never ran is one clear error."""
    never = [u.path for u in units if u.path not in t.reads]
    if never:
        raise CheckpointError(f"{never[0]} never runs in your model's forward pass")
    position = {p: i for i, p in enumerate(t.order)}
    by_run = [
        Unit(u.path, u.kind, u.keys, u.shape, position[u.path]) for u in sorted(units, key=lambda u: position[u.path])
    ]
    writer = {v: k for k, v in t.writes.items()}
    partner = {u.path: writer[t.reads[u.path]] for u in by_run if u.kind == "bn" and t.reads[u.path] in writer}
    return by_run, Flow(partner=partner, reads=dict(t.reads))


def reference_map(
    native: Mapping[str, Any],
    framework: str,
    model: str | None,
    ref: str,
    source: str,
    assume: Mapping[str, str] | None = None,
    user: Any = None,
) -> StructureMap:
    """Map ``native`` by running the user's model (see the module docstring); ``user``: the model already built
    and loaded (:func:`read_through_model`), else built from ``ref`` here. Every look-alike the weights fit
    stays a candidate (``StructureMap.candidates``) until :func:`choose_by_proof` runs them against the user's
    model; the trace rides on the map."""
    foreign = load_submodule(framework, "foreign")
    view = foreign.VIEW  # the naming its weights are presented in (Keras: torch's)
    units = units_of(native, view)
    found, _notes = fitting_specs(units, model, source, assume)  # the run proves which (a wrong one fails the proof)
    spec = found[0]
    if user is None:
        user = _build(ref, framework)
        _load(user, framework, native, ref)
    t, square = _run(user, framework, spec)
    if hasattr(foreign, "residual_blocks"):  # blocks that are no modules (Keras' flat layers): the graph's additions
        t.block_ends = [end for end, _layers in foreign.residual_blocks(user)]
    by_run, flow = followed(units, t)
    mapped, notes = map_units(by_run, spec, source, flow=flow)
    if not is_zoo_model(spec.name):  # a derived spec: its strides, stem pool and ReLU as the run shows them
        refined, facts = read_off_run(spec, mapped, t)
        if refined is not spec:
            found, notes = variants(refined, dict(assume or {})), [*notes, *facts]
    ran = [f"mapped by running {ref}"] + (
        [f"your model takes square images only (H != W failed): proved on {square}x{square}"] if square else []
    )
    runs_in = framework if view != framework else None
    return StructureMap(spec, mapped, view, [*ran, *notes], trace=t, candidates=found, runs_in=runs_in)


def _run(user: Any, framework: str, spec: ModelSpec) -> tuple[Trace, int | None]:
    """The traced run on a seeded batch of 2, H != W; a model that fails there (one that pools with a kernel of
    its width, as common CIFAR code does) runs a square batch instead: (the trace, the square side or None)."""
    height, width = (32, 40) if spec.stem.kind == "cifar" else (64, 96)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, spec.in_channels, height, width)).astype("float32")
    try:
        return trace(user, framework, x), None
    except CheckpointError as exc:
        if not str(exc).startswith("--reference: your model failed"):
            raise
        square = np.random.default_rng(0).standard_normal((2, spec.in_channels, height, height)).astype("float32")
        return trace(user, framework, square), height


def choose_by_proof(m: StructureMap, weights: Mapping[str, Any]) -> StructureMap:
    """The candidate (a look-alike of the others: same tensors) that computes what the user's model computes, on
    the stem, every block and the logits; the map with it as its spec and the proof noted. None proved: the first
    candidate's failure (an architectural difference); several: one line saying what to settle."""
    candidates = m.candidates or ([m.spec] if m.spec is not None else [])
    proved, failures = [], []
    for spec in candidates:
        try:
            proved.append((spec, prove(dataclasses.replace(m, spec=spec), weights)))
        except VerificationError as exc:
            failures.append(exc)
    if not proved:
        raise failures[0]
    if len(proved) > 1:
        raise CheckpointError(
            f"your model computes what {len(proved)} look-alikes compute on the test batch: "
            f"{'; '.join(differences([s for s, _ in proved]))}; give --assume to say which"
        )
    spec, rel = proved[0]
    notes = [*m.notes, f"proved against your model: every block and the logits within {rel:.1e}"]
    if len(candidates) > 1:
        notes.append(f"of {len(candidates)} look-alikes the run proved {', '.join(assumed(spec))}")
    return dataclasses.replace(m, spec=spec, notes=notes, candidates=[spec])


def prove(m: StructureMap, weights: Mapping[str, Any]) -> float:
    """The zoo model with ``weights`` vs the user's model on the traced batch: every block and the logits.
    Returns the logits' relative difference; raises VerificationError naming the first block off."""
    from resnet_tools.core.backends import load_backend

    t = m.trace
    assert t is not None and t.x is not None and t.logits is not None and m.spec is not None
    mod = load_backend(m.runs_in or m.framework)
    zoo = mod.import_weights(mod.create_model(m.spec), {k: np.asarray(v) for k, v in weights.items()})
    ours = mod.forward_blocks(zoo, t.x)
    tol = tolerance("float32", "cpu", "eval").rel
    for name, theirs in user_blocks(m, t):
        if not np.isfinite(theirs).all():
            where = "the stem" if name == "stem" else f"block {name}"
            raise VerificationError(
                f"your model computes NaN/inf at {where} on a seeded batch, so nothing can be proved against it "
                f"(its weights overflow: are they the trained ones?); nothing written"
            )
        if name in ours and (theirs.shape != ours[name].shape or not within(tensor_diff(theirs, ours[name]), tol)):
            what = "the stem" if name == "stem" else f"block {name}"
            why = (
                f"shape {list(theirs.shape)} vs the zoo's {list(ours[name].shape)}"
                if theirs.shape != ours[name].shape
                else f"differs by {tensor_diff(theirs, ours[name]).max_rel:.2e} relative"
            )
            raise VerificationError(
                f"your model and {m.spec.name} with the converted weights part at {what} ({why}; tolerance {tol:g}): "
                f"an architectural difference (padding, pooling, stride placement), not a conversion; nothing written"
            )
    diff = tensor_diff(t.logits, ours["logits"])
    if t.logits.shape != ours["logits"].shape or not within(diff, tol):
        raise VerificationError(
            f"your model and {m.spec.name} agree up to the last block but not in the logits "
            f"({diff.max_rel:.2e} relative): the head differs (pooling, dropout left on?); nothing written"
        )
    return diff.max_rel


def user_blocks(m: StructureMap, t: Trace) -> Iterator[tuple[str, np.ndarray]]:
    """The user's stem output (the first block's input) and each block's output, where the block is a module, or
    where the graph's additions end the blocks (Keras), in order."""
    if t.block_ends and m.spec is not None:
        if len(t.block_ends) == len(block_names(m.spec)):
            yield from ((n, t.module_out[e]) for n, e in zip(block_names(m.spec), t.block_ends, strict=True))
        return
    blocks: dict[str, list[str]] = {}
    for module, unit in m.units.items():
        parts = module.split(".")
        if parts[0].startswith("layer") and len(parts) > 2:
            blocks.setdefault(".".join(parts[:2]), []).append(unit.path)
    first = True
    for name, paths in blocks.items():
        prefix = common_prefix(paths)
        if prefix and prefix in t.module_out:
            if first and prefix in t.module_in:
                yield "stem", t.module_in[prefix]
            yield name, t.module_out[prefix]
        first = False
