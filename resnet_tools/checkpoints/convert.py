"""``resnet convert`` and ``resnet inspect`` as library functions (the CLI is a thin wrapper)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnet_spec import ModelSpec, apply_overrides, count_params
from resnet_spec.derive import from_document
from resnet_spec.emit import function_name
from resnet_spec.errors import CheckpointError, SpecError, VerificationError
from resnet_spec.frameworks import FRAMEWORKS
from resnet_spec.identify import check_architecture, identify
from resnet_spec.lookalikes import axis, check_assumptions, differences, open_axes, settings, variants
from resnet_spec.params import canonical_table
from resnet_spec.spec import list_models
from resnet_spec.tolerances import tolerance
from resnet_spec.weights import validate_weights
from resnet_tools.checkpoints.formats import (
    FORMATS,
    Checkpoint,
    Format,
    format_for,
    is_orbax_folder,
    nonfinite,
    read_checkpoint,
    shapes_of,
    weights_dtype,
    write_checkpoint,
)
from resnet_tools.checkpoints.formats.base import ASSUMED_KEY, DERIVED_KEY
from resnet_tools.checkpoints.lazy import counting_nonfinite, dtype_of
from resnet_tools.checkpoints.like import write_like
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.checkpoints.structure import StructureMap, unproved_derived
from resnet_tools.core.backends import installed_backends, load_backends, load_submodule
from resnet_tools.core.diffs import TensorDiff, tensor_diff, within
from resnet_tools.core.files import commit, publish, refuse_special, staged, temp_path, write_errors

VERIFY_INPUT = (2, 97, 131)  # batch, H, W: non-square, odd


@dataclass
class ConvertResult:
    spec: ModelSpec
    src_format: str
    dst_format: str
    frameworks: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    verify: TensorDiff | None = None
    verify_frameworks: tuple[str, str] | None = None
    verify_dtype: str = "float32"
    notes: list[str] = field(default_factory=list)  # dtype changes, non-finite values let through


def resolve_spec(ckpt: Checkpoint, model: str | None, assume: Mapping[str, str] | None = None) -> ModelSpec:
    """The checkpoint's architecture: given (and checked), stamped in its metadata, or inferred; what the weights
    cannot show as the file's metadata records it, or as ``assume`` says (the user's word wins)."""
    shapes = shapes_of(ckpt.weights)
    recorded = _recorded_unseen(ckpt)
    if ckpt.spec is not None and model in (None, ckpt.spec.name):  # the map step decided it
        spec = ckpt.spec
    elif model is not None:
        spec = check_architecture(model, shapes)
    elif DERIVED_KEY in ckpt.metadata:  # our file of a derived spec: it says which
        spec = _recorded_derived(ckpt.metadata[DERIVED_KEY], shapes)
    elif ckpt.metadata.get("model"):
        spec = check_architecture(ckpt.metadata["model"], shapes)
    else:
        spec = identify(shapes)
    derived = ckpt.metadata.get(DERIVED_KEY)
    unseen = {**recorded, **(assume or {})}
    if unseen and spec is not ckpt.spec:  # a mapping's spec has them settled already
        changes = {k: v for k, v in unseen.items() if axis(k).can_apply(spec) and axis(k).current(spec) != v}
        spec = apply_overrides(spec, **changes) if changes else spec
    if spec is not ckpt.spec and derived is None and spec.name not in list_models():  # derived here, not --spec
        unsettled = [a for a in open_axes(spec) if a.name not in unseen]
        if [a.name for a in unsettled] == ["derived"]:
            raise CheckpointError(unproved_derived(spec, "the checkpoint"))
        if unsettled:  # read by the zoo's names, derived: its names cannot say what its weights do not show
            raise CheckpointError(
                f"{spec.name} (a derived spec) has look-alikes its names and weights cannot tell apart: "
                f"{'; '.join(differences(variants(spec)))}; say which: "
                + " ".join(f"--assume {a.name}=..." for a in unsettled)
            )
    # names, shapes and float dtypes, all listed at once, with the keys of the file's own framework
    source = ckpt.metadata.get("source_framework", "")
    validate_weights(spec, source if source in FRAMEWORKS else "torch", ckpt.weights)
    return spec


def _recorded_derived(text: str, shapes: Mapping[str, tuple[int, ...]]) -> ModelSpec:
    """The derived spec our file's metadata records, checked against its tensors (one line if it does not fit)."""
    try:
        spec = from_document(json.loads(text))
    except (ValueError, SpecError) as exc:
        raise CheckpointError(f"the checkpoint's {DERIVED_KEY} metadata is not a spec this tool reads: {exc}") from None
    if {e.name: e.shape for e in canonical_table(spec)} != dict(shapes):
        raise CheckpointError(f"the checkpoint's tensors do not fit the derived spec {spec.name} it records")
    return spec


def _recorded_unseen(ckpt: Checkpoint) -> dict[str, str]:
    """What the weights cannot show, as our file's metadata records it (checked: one line if it is not ours)."""
    text = ckpt.metadata.get(ASSUMED_KEY)
    if text is None:
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError
        return check_assumptions({str(k): str(v) for k, v in data.items()})
    except (ValueError, SpecError):
        raise CheckpointError(
            f"the checkpoint's {ASSUMED_KEY} metadata is not what this tool writes: {text[:80]}"
        ) from None


def _fallback_framework() -> str:
    installed = installed_backends()
    if not installed:
        raise CheckpointError("--verify needs at least one backend installed (pip install -e '.[torch]')")
    return installed[0]


def verify_conversion(
    src: Checkpoint, dst_path: Path, dst_fmt: Format, spec: ModelSpec, frameworks: tuple[str, str]
) -> TensorDiff:
    """Logits of the model loaded from the source vs the model loaded back from the written file, each
    run in its own weights' precision (float64 stays float64: a file that lost it fails the float64 bound).
    Both are ``spec``'s model: this proves the file, not the architecture (``--reference`` proves that)."""
    mods = load_backends(list(dict.fromkeys(frameworks)))
    written = read_checkpoint(dst_path, dst_fmt, spec)  # in the zoo's names: --map/--reference not for it
    x = np.random.default_rng(0).standard_normal((VERIFY_INPUT[0], spec.in_channels, *VERIFY_INPUT[1:]))
    outputs = []
    for fw, weights in zip(frameworks, (src.weights, written.weights), strict=True):
        dtype = compute_dtype(weights)
        model = mods[fw].import_weights(mods[fw].create_model(spec, dtype=dtype), weights)
        outputs.append(mods[fw].forward_numpy(model, x.astype(dtype))["logits"])
    return tensor_diff(outputs[0], outputs[1])


def _template(like: Path | str, fmt: Format, spec: ModelSpec) -> Checkpoint:
    """The ``--like`` checkpoint, read (lazily) and checked to be the same model as the weights."""
    if fmt.write_state is None:
        raise CheckpointError(f"--like {like}: a {fmt.name} file; the template must be a torch or paddle checkpoint")
    # mapped by its names or structure only: --reference, --map and --assume describe the source, not the template
    template = read_checkpoint(like, fmt, spec.name, lazy=True, how=MapRequest(assume=settings(spec)))
    theirs = resolve_spec(template, spec.name)
    if (theirs.name, canonical_table(theirs), theirs.stem.kind) != (spec.name, canonical_table(spec), spec.stem.kind):
        raise CheckpointError(f"--like {like} is not the same model as the weights ({spec.name} with these options)")
    return template


def _same_format_as_template(dst: Path, template: Format, like: Path | str) -> None:
    """--like writes the template's format: a DST whose extension names another format is refused (a paddle pickle
    named .pth would load in neither framework)."""
    named = next((f for f in FORMATS.values() for e in f.extensions if dst.name.lower().endswith(e)), None)
    if named is not None and named.name != template.name:
        raise CheckpointError(
            f"--like {like} is a {template.name} checkpoint, so the output is one too: name DST "
            f"{dst.stem}{template.extensions[0]} (not {named.extensions[0]}), or leave out --like"
        )


def _check_emit(code: Path, fmt: Format, like: Path | str | None, force: bool) -> None:
    """--emit-code: a framework's weights file to go with it, no --like, a writable new .py."""
    if fmt.framework is None or not fmt.code:
        raise CheckpointError(
            f"--emit-code writes a model file for a framework's weights: give DST as .pth, .pdparams, .weights.h5 or "
            f".msgpack (not {fmt.name})"
        )
    if like is not None:
        raise CheckpointError("--emit-code and --like: the generated model has the zoo's names; give one or the other")
    if code.suffix != ".py" or code.is_dir():
        raise CheckpointError(f"--emit-code {code}: give a new .py file")
    if os.path.lexists(code) and not force:
        raise CheckpointError(f"{code} exists; pass --force to overwrite")
    if not code.parent.is_dir():
        raise CheckpointError(f"cannot write {code}: folder {code.parent} does not exist")


#: The notes that say what the conversion took as given: the generated file's docstring repeats them.
_ASSUMED = ("settled ", "assumed ", "derived ", "proved ", "of ")


def emitted_source(spec: ModelSpec, framework: str, weights: str, notes: list[str]) -> str:
    """The standalone model file for ``framework`` (its backend's ``emit`` module), checked to compile."""
    text: str = load_submodule(framework, "emit").source(spec, weights, [n for n in notes if n.startswith(_ASSUMED)])
    compile(text, f"{spec.name}.py", "exec")  # a generator bug is ours, caught here, not in the user's import
    return text


def compute_dtype(weights: dict[str, np.ndarray]) -> str:
    """The precision a model runs these weights in: float64 for float64 weights, else float32."""
    return "float64" if weights_dtype(weights) == "float64" else "float32"


def convert(
    src: Path | str,
    dst: Path | str,
    *,
    model: str | None = None,
    from_format: str | None = None,
    to_format: str | None = None,
    verify: bool = False,
    force: bool = False,
    allow_nonfinite: bool = False,
    metadata: Mapping[str, str] | None = None,
    like: Path | str | None = None,
    how: MapRequest = PLAIN,
    emit_code: Path | str | None = None,
) -> ConvertResult:
    """Convert a checkpoint between formats; nothing is written unless everything (and --verify) passes.
    NaN/inf in the source is refused unless ``allow_nonfinite`` (then noted). ``metadata``: provenance
    (``weights_id``, ``preprocessing``) recorded by formats that keep metadata. ``like``: a torch or paddle
    checkpoint whose naming, layouts, dtypes and wrapper the output takes (your own model loads it strictly).
    ``how``: how a state dict of the user's own naming is mapped (``--reference``, ``--map``, ``--assume``).
    ``emit_code``: also write a standalone model file for the output's framework (no import of this project) whose
    model loads ``dst`` strictly, written and renamed into place with ``dst``.

    The pipeline: read native -> map (``how``; a reference run proves the mapping) -> write (a temp file) ->
    verify (``verify``: the written file against the source in two frameworks) -> commit."""
    src, dst = Path(src), Path(dst)
    sf = format_for(src, from_format)
    df = format_for(like, to_format) if like is not None else format_for(dst, to_format)
    if like is not None and to_format is None:
        _same_format_as_template(dst, df, like)
    if dst.is_dir() and not (df.folder and is_orbax_folder(dst)):  # only a folder of the output's kind is replaced
        raise CheckpointError(
            f"cannot write {dst}: it is a folder" + (" that is not an orbax checkpoint" if df.folder else "")
        )
    refuse_special(dst)
    if os.path.lexists(dst) and not force:  # lexists: a dangling symlink is an existing name too
        raise CheckpointError(f"{dst} exists; pass --force to overwrite")
    if not dst.parent.is_dir():
        raise CheckpointError(f"cannot write {dst}: folder {dst.parent} does not exist")
    if df.write is None:
        raise CheckpointError(f"writing {df.name} ({df.description}) is not supported; use .weights.h5")
    code = Path(emit_code) if emit_code is not None else None
    if code is not None:
        _check_emit(code, df, like, force)
    verify_fws = (
        (sf.framework or df.framework or _fallback_framework(), df.framework or sf.framework or _fallback_framework())
        if verify
        else None
    )
    needed = sorted({f for f in (sf.imports, df.imports, df.write_imports, *(verify_fws or ())) if f})
    t0 = time.perf_counter()
    load_backends(needed)  # paddle before tensorflow, only what these formats need
    t1 = time.perf_counter()
    ckpt = read_checkpoint(src, sf, model, lazy=True, how=how)  # tensors stay in the file until written
    ckpt.metadata.update(metadata or {})
    spec = resolve_spec(ckpt, model, how.assume)
    t2 = time.perf_counter()
    result = ConvertResult(spec, sf.name, df.name, needed, verify_frameworks=verify_fws, notes=list(ckpt.notes))
    bad: dict[str, int] = {}
    ckpt.weights = counting_nonfinite(ckpt.weights, bad)  # checked on the one read each tensor gets
    template = _template(like, df, spec) if like is not None else None
    with (staged if df.folder else temp_path)(dst) as tmp, contextlib.ExitStack() as stack:
        code_tmp = stack.enter_context(temp_path(code)) if code is not None else None
        if template is not None:
            with write_errors(tmp):
                write_like(ckpt.weights, spec, template, tmp)
            result.notes.append(f"written in the naming and wrapper of {like}")
        else:
            write_checkpoint(ckpt, spec, tmp, df)
        if bad:  # the temp file is removed on the way out: nothing is written
            order = list(ckpt.weights)
            shown = sorted(bad, key=order.index)
            listing = ", ".join(f"{k} ({bad[k]})" for k in shown[:5]) + (" ..." if len(bad) > 5 else "")
            if not allow_nonfinite:
                raise CheckpointError(
                    f"{src} holds NaN/inf values in {len(bad)} tensor(s): {listing}; the source checkpoint is "
                    f"broken (pass --allow-nonfinite to convert it anyway)"
                )
            result.notes.append(f"NaN/inf values copied as they are from {src}: {listing}")
        t3 = time.perf_counter()
        if verify_fws:
            result.verify = verify_conversion(ckpt, tmp, df, spec, verify_fws)
            result.verify_dtype = compute_dtype(ckpt.weights)
            tol = tolerance(result.verify_dtype, "cpu", "eval").rel
            if not within(result.verify, tol):
                raise VerificationError(
                    f"verification failed: {result.verify_dtype} logits differ by {result.verify.max_rel:.2e} "
                    f"relative (> {tol:g}, or not finite); {dst} not written"
                )
        if code is not None and code_tmp is not None and df.framework is not None:
            text = emitted_source(spec, df.framework, dst.name, result.notes)
            code_tmp.write_text(text)
            result.notes.append(f"wrote {code}: {function_name(spec)}() builds the model that loads {dst.name}")
        if df.folder:  # an existing folder was checked above: an orbax checkpoint, and --force given
            publish(tmp, dst)
        else:
            commit(tmp, dst, exclusive=not force)
        if code is not None and code_tmp is not None:
            commit(code_tmp, code, exclusive=not force)
    t4 = time.perf_counter()
    result.seconds = {"imports": t1 - t0, "read": t2 - t1, "write": t3 - t2, "verify": t4 - t3 if verify else 0.0}
    return result


def map_checkpoint(
    path: Path | str, *, model: str | None = None, fmt: str | None = None, how: MapRequest = PLAIN
) -> StructureMap:
    """How a torch or paddle checkpoint's modules map onto the zoo (``resnet map``): by running the user's code,
    a map file, the zoo's names, or the file's structure (an ambiguous one as a flagged draft); the model
    identified (or ``model``)."""
    path = Path(path)
    f = format_for(path, fmt)
    if f.write_state is None:
        raise CheckpointError(
            f"{path} is a {f.name} file: resnet map reads torch and paddle state dicts (Keras files map by their "
            f"layer names or Keras' layer order; see resnet inspect)"
        )
    if f.imports:
        load_backends([f.imports])
    # an ambiguous file gives a map to check by hand, not an error
    ckpt = read_checkpoint(path, f, model, lazy=True, how=dataclasses.replace(how, draft=True))
    mapping: StructureMap = ckpt.mapping
    if mapping.spec is None:  # the zoo's own names: module paths are canonical modules
        spec = resolve_spec(ckpt, model, how.assume)
        mapping = StructureMap(spec, mapping.units, mapping.framework, mapping.notes)
    return mapping


@dataclass
class InspectResult:
    path: Path
    format: str
    spec: ModelSpec
    trainable: int
    bn_stats: int
    dtypes: dict[str, int]
    metadata: dict[str, str]
    notes: list[str] = field(default_factory=list)
    nonfinite: dict[str, int] = field(default_factory=dict)


def inspect_checkpoint(
    path: Path | str, *, model: str | None = None, fmt: str | None = None, how: MapRequest = PLAIN
) -> InspectResult:
    """Format, detected model, parameter counts and dtypes of a checkpoint."""
    path = Path(path)
    f = format_for(path, fmt)
    if f.imports:
        load_backends([f.imports])
    ckpt = read_checkpoint(path, f, model, lazy=True, how=how)  # shapes and dtypes need no tensor in memory
    spec = resolve_spec(ckpt, model, how.assume)
    trainable, stats = count_params(spec)
    by_name = {e.name: e for e in canonical_table(spec)}
    dtypes = Counter(str(dtype_of(v)) for k, v in ckpt.weights.items() if k in by_name)
    return InspectResult(
        path, f.name, spec, trainable, stats, dict(dtypes), ckpt.metadata, ckpt.notes, nonfinite(ckpt.weights)
    )
