"""Fast, in-process tests of the safety-critical helpers: atomic files, stale temp files, outputs checked before a
run, writer errors and interrupts, and the tensor comparison every parity verdict rests on. `make mutate` runs
mutation testing against these (docs/generated/mutation.md): each test pins a value or a behaviour that a
changed operator, constant or branch would alter."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from resnet_spec.errors import ResNetError
from resnet_tools.core import interrupts
from resnet_tools.core.diffs import TensorDiff, tensor_diff, within
from resnet_tools.core.errors import OutputError
from resnet_tools.core.files import (
    STALE_AFTER_S,
    TEMP_MARK,
    atomic_write,
    check_outputs,
    clean_stale_temps,
    commit,
    refuse_special,
    shown_name,
    temp_path,
    write_errors,
)

# ---- tensor comparison ------------------------------------------------------------------------------------


def test_tensor_diff_figures_by_hand() -> None:
    ref = np.array([[3.0, -4.0], [0.0, 2.0]], dtype=np.float32)
    out = np.array([[3.0, -3.0], [0.5, 2.0]], dtype=np.float32)
    d = tensor_diff(ref, out)
    assert d.max_abs == 1.0  # |-4 - -3|
    assert d.max_rel == 1.0 / 4.0  # over max |reference|, not max |target| (3) or the mean
    r, o = ref.astype(np.float64).ravel(), out.astype(np.float64).ravel()
    assert d.cosine == pytest.approx(r @ o / (np.linalg.norm(r) * np.linalg.norm(o)), rel=1e-15)
    assert d.rel_l2 == pytest.approx(np.sqrt(1.0 + 0.25) / np.sqrt(9 + 16 + 4), rel=1e-15)
    assert tensor_diff(out, ref).max_rel == 1.0 / 3.0  # the reference is the first argument


def test_tensor_diff_is_computed_in_float64() -> None:
    ref = np.array([1.0, 1.0 + 2.0**-10], dtype=np.float16)
    out = np.array([1.0, 1.0], dtype=np.float16)
    assert tensor_diff(ref, out).max_abs == 2.0**-10
    big = np.full(4, 60000.0, dtype=np.float16)  # squares overflow float16 (and float32 sums at larger sizes)
    assert tensor_diff(big, big).cosine == pytest.approx(1.0, abs=1e-12)


def test_identical_tensors_are_zero_apart() -> None:
    a = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    d = tensor_diff(a, a.copy())
    assert (d.max_abs, d.max_rel, d.rel_l2) == (0.0, 0.0, 0.0) and d.cosine == pytest.approx(1.0, abs=1e-12)


def test_tensor_diff_of_small_tensors_is_relative_too() -> None:
    """Magnitudes under 1 (logits of a small model, a BN's shift) are divided by their scale like any other."""
    ref, out = np.array([0.5, -0.25]), np.array([0.4, -0.25])
    d = tensor_diff(ref, out)
    assert d.max_rel == pytest.approx(0.1 / 0.5) and d.rel_l2 == pytest.approx(0.1 / np.linalg.norm(ref))
    assert d.cosine == pytest.approx(ref @ out / (np.linalg.norm(ref) * np.linalg.norm(out)))


def test_tensor_diff_of_zero_and_empty_references() -> None:
    zeros = np.zeros(3)
    d = tensor_diff(zeros, np.array([0.0, 0.5, 0.0]))
    assert d.max_abs == 0.5 and d.max_rel == 0.5 and d.rel_l2 == 0.5  # no scale to divide by: absolute figures
    assert d.cosine == 0.0  # one side has no direction: equal only if both are zero
    assert tensor_diff(zeros, zeros.copy()).cosine == 1.0
    empty = tensor_diff(np.zeros((0, 4)), np.zeros((0, 4)))
    assert (empty.max_abs, empty.max_rel, empty.rel_l2) == (0.0, 0.0, 0.0)


def test_tensor_diff_refuses_different_shapes() -> None:
    with pytest.raises(ResNetError, match=r"shape mismatch: reference \[2, 3\] vs target \[3, 2\]"):
        tensor_diff(np.zeros((2, 3)), np.zeros((3, 2)))


def test_within_passes_at_the_bound_and_never_on_nan_or_inf() -> None:
    assert within(TensorDiff(0.0, 1e-5, 1.0), 1e-5)
    assert not within(TensorDiff(0.0, 1.0001e-5, 1.0), 1e-5)
    assert within(TensorDiff(0.0, 0.0, 1.0), 0.0)
    for bad in (float("nan"), float("inf")):
        assert not within(TensorDiff(bad, bad, 1.0), 1.0)
    nan_out = tensor_diff(np.ones(3), np.array([1.0, np.nan, 1.0]))
    assert not within(nan_out, 1e9)


# ---- temp files and stale ones ------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp_name(stem: str, pid: int, suffix: str = ".pth") -> str:
    return f".{stem}{TEMP_MARK}{pid}-abc{suffix}"


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = _dead_pid()
    gone = tmp_path / _temp_name("a", dead)
    alive_young = tmp_path / _temp_name("b", os.getpid())
    alive_old = tmp_path / _temp_name("c", os.getpid())
    malformed = tmp_path / f".d{TEMP_MARK}notapid-x.pth"
    other = tmp_path / f"e{TEMP_MARK}{dead}-x.pth"  # not hidden: not ours
    plain = tmp_path / "weights.pth"
    for f in (gone, alive_young, alive_old, malformed, other, plain):
        f.write_bytes(b"x")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(alive_old, (old, old))
    young = time.time() - STALE_AFTER_S + 600
    os.utime(alive_young, (young, young))
    removed = clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([gone, alive_old])
    assert not gone.exists() and not alive_old.exists()
    assert alive_young.exists() and malformed.exists() and other.exists() and plain.exists()


def test_a_malformed_name_does_not_stop_the_cleanup(tmp_path: Path) -> None:
    dead = _dead_pid()
    for i in range(5):
        (tmp_path / f".m{i}{TEMP_MARK}x{i}-bad.pth").write_bytes(b"x")
        (tmp_path / _temp_name(f"s{i}", dead)).write_bytes(b"x")
    assert len(clean_stale_temps(tmp_path)) == 5
    assert len(list(tmp_path.iterdir())) == 5


def test_stale_cleanup_never_follows_links_or_removes_folders(tmp_path: Path) -> None:
    dead = _dead_pid()
    target = tmp_path / "precious.bin"
    target.write_bytes(b"keep")
    link = tmp_path / _temp_name("l", dead)
    link.symlink_to(target)
    folder = tmp_path / _temp_name("f", dead)
    folder.mkdir()
    assert clean_stale_temps(tmp_path) == []
    assert link.is_symlink() and folder.is_dir() and target.read_bytes() == b"keep"


def test_cleanup_of_a_missing_folder_is_nothing(tmp_path: Path) -> None:
    assert clean_stale_temps(tmp_path / "absent") == []


def test_shown_name_is_the_file_a_temp_file_stands_for(tmp_path: Path) -> None:
    assert shown_name(tmp_path / _temp_name("w", 12, ".weights.h5")) == tmp_path / "w.weights.h5"
    assert shown_name(tmp_path / f".w{TEMP_MARK}12-ab") == tmp_path / "w"
    assert shown_name(tmp_path / "plain.pth") == tmp_path / "plain.pth"
    assert shown_name(tmp_path / ".hidden.pth") == tmp_path / ".hidden.pth"


def test_temp_path_keeps_the_suffixes_and_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "model.weights.h5"
    with temp_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".weights.h5")
        assert tmp.name.startswith(f".model{TEMP_MARK}{os.getpid()}-") and tmp.exists()
    assert not tmp.exists() and list(tmp_path.iterdir()) == []
    with temp_path(tmp_path / "noext") as tmp2:
        assert tmp2.name.endswith(".tmp")


def test_temp_path_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with (
        pytest.raises(OutputError, match=r"cannot write .*: No such file or directory in"),
        temp_path(tmp_path / "absent" / "w.pth"),
    ):
        pass


# ---- outputs ----------------------------------------------------------------------------------------------


def test_refuse_special_refuses_only_nodes_that_are_not_files(tmp_path: Path) -> None:
    refuse_special(tmp_path / "new.pth")  # does not exist yet: fine
    (tmp_path / "old.pth").write_bytes(b"x")
    refuse_special(tmp_path / "old.pth")
    refuse_special(tmp_path)  # folders are refused elsewhere, with their own message
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OutputError, match="not a regular file"):
        refuse_special(pipe)


def test_commit_gives_normal_permissions_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    target.write_bytes(b"old")
    tmp = tmp_path / ".w.tmp"
    tmp.write_bytes(b"new")
    os.chmod(tmp, 0o600)
    umask = os.umask(0o027)
    try:
        commit(tmp, target)
    finally:
        os.umask(umask)
    assert target.read_bytes() == b"new" and not tmp.exists()
    assert target.stat().st_mode & 0o777 == 0o640
    tmp.write_bytes(b"again")
    umask = os.umask(0o022)
    try:
        commit(tmp, target)
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644  # rw for the owner, r for the others: never x


def test_exclusive_commit_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    tmp = tmp_path / ".w.tmp"
    tmp.write_bytes(b"mine")
    commit(tmp, target, exclusive=True)
    assert target.read_bytes() == b"mine" and not tmp.exists()
    tmp.write_bytes(b"second")
    with pytest.raises(OutputError, match="created by someone else"):
        commit(tmp, target, exclusive=True)
    assert target.read_bytes() == b"mine"


def test_commit_onto_a_folder_or_a_pipe_is_one_line(tmp_path: Path) -> None:
    tmp = tmp_path / ".w.tmp"
    tmp.write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_bytes(b"x")
    with pytest.raises(OutputError, match="it is a folder"):
        commit(tmp, tmp_path / "dir")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OutputError, match="not a regular file"):
        commit(tmp, tmp_path / "pipe")
    assert (tmp_path / "pipe").is_fifo()


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    atomic_write(target, lambda fh: fh.write(b"first"))
    assert target.read_bytes() == b"first"

    def broken(fh: object) -> None:
        fh.write(b"half")  # type: ignore[attr-defined]
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"first" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "absent" / "x.md", lambda fh: fh.write(b"x"))


def test_check_outputs_before_a_run(tmp_path: Path) -> None:
    existing = tmp_path / "a.json"
    existing.write_text("{}")
    check_outputs([str(tmp_path / "new.json"), None, ""], force=False)
    with pytest.raises(OutputError, match="exists; pass --force"):
        check_outputs([str(tmp_path / "new.json"), str(existing)], force=False)
    check_outputs([str(existing)], force=True)
    with pytest.raises(OutputError, match="two outputs name the same file"):
        check_outputs([str(existing), str(tmp_path / "." / "a.json")], force=True)
    with pytest.raises(OutputError, match="it is a folder"):
        check_outputs([str(tmp_path)], force=True)
    with pytest.raises(OutputError, match=r"folder .* does not exist"):
        check_outputs([str(tmp_path / "absent" / "x")], force=True)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OutputError, match="not a regular file"):
        check_outputs([str(pipe)], force=True)


def test_check_outputs_checks_every_output_not_only_the_first(tmp_path: Path) -> None:
    existing = tmp_path / "b.png"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match=r"b\.png exists"):
        check_outputs([None, str(tmp_path / "a.json"), str(existing)], force=False)


def test_check_outputs_of_a_report_folder(tmp_path: Path) -> None:
    report = tmp_path / "report"
    check_outputs([], force=False, report_dir=str(report))  # not there yet
    report.mkdir()
    check_outputs([], force=False, report_dir=str(report))  # empty folder
    (report / "parity.md").write_text("old")
    with pytest.raises(OutputError, match="already holds a report"):
        check_outputs([], force=False, report_dir=str(report))
    check_outputs([], force=True, report_dir=str(report))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_outputs([], force=True, report_dir=str(tmp_path / "file"))


# ---- writer errors and interrupts ---------------------------------------------------------------------------


def test_write_errors_name_the_output_not_the_temp_file(tmp_path: Path) -> None:
    tmp = tmp_path / _temp_name("w", 1)
    with pytest.raises(OutputError, match=r"^cannot write .*/w\.pth: zip writer failed$"), write_errors(tmp):
        raise RuntimeError("zip writer failed\nsecond line of C++ context")
    with pytest.raises(OutputError, match="no space left on the device"), write_errors(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match=r"cannot write .*w\.pth: ValueError$"), write_errors(tmp):
        raise ValueError("")
    with pytest.raises(ResNetError, match="ours"), write_errors(tmp):  # our own errors pass unchanged
        raise ResNetError("ours")
    with pytest.raises(TypeError), write_errors(tmp):  # programming errors are not dressed up as write errors
        raise TypeError("bug")


def test_a_writer_error_after_a_signal_is_the_interrupt(tmp_path: Path) -> None:
    import signal

    with interrupts.handled():
        assert not interrupts.received()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        assert interrupts.received()
        with pytest.raises(KeyboardInterrupt), write_errors(tmp_path / "w.pth"):
            raise RuntimeError("unexpected pos 499392 vs 499280")  # torch's zip writer after the interrupt
    with interrupts.handled():
        assert not interrupts.received()  # a new command starts clean
        with pytest.raises(OutputError), write_errors(tmp_path / "w.pth"):
            raise RuntimeError("unexpected pos")


def test_handlers_are_restored_after_a_command() -> None:
    import signal

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with interrupts.handled():
        assert signal.getsignal(signal.SIGTERM) is not before[1]
        assert signal.getsignal(signal.SIGINT) is not before[0]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ---- restricted unpickling (.pdparams) ----------------------------------------------------------------------


class _RunsCode:
    """A pickle payload that, if unpickled without restriction, creates ``marker`` (a real attack would do worse)."""

    def __init__(self, marker: Path, via: str = "exec") -> None:
        self.marker, self.via = marker, via

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        code = f"open({str(self.marker)!r}, 'w').write('ran')"
        if self.via == "system":
            return (os.system, (f"touch {self.marker}",))
        return (exec, (code,))


@pytest.mark.parametrize("via", ["exec", "system"])
def test_a_pdparams_pickle_that_runs_code_is_refused_before_it_runs(via: str, tmp_path: Path) -> None:
    import pickle

    from resnet_tools.checkpoints.formats import pdparams

    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"conv1.weight": np.zeros((2, 3, 3, 3), "float32"), "x": _RunsCode(marker, via)}))
    with pytest.raises(
        ResNetError, match=r"evil\.pdparams: refusing to load: it asks to run (builtins\.exec|posix\.system)"
    ):
        pdparams.read_paddle(evil, None)
    assert not marker.exists()


def test_the_unpickler_reads_what_paddle_save_writes_and_nothing_else() -> None:
    import collections
    import io
    import pickle

    from resnet_tools.checkpoints.formats import pdparams

    state = collections.OrderedDict(w=np.arange(6, dtype="float32").reshape(2, 3), s=np.float32(2.5), n=np.int64(3))
    back = pdparams._ArraysOnlyUnpickler(io.BytesIO(pickle.dumps(state, protocol=4))).load()
    assert list(back) == ["w", "s", "n"] and np.array_equal(back["w"], state["w"]) and back["s"] == 2.5
    for payload in (pickle.dumps(np.load), pickle.dumps(collections.Counter("ab")), pickle.dumps(Path("x"))):
        with pytest.raises(ResNetError, match="refusing to load: it asks to run"):
            pdparams._ArraysOnlyUnpickler(io.BytesIO(payload)).load()


def test_a_truncated_pdparams_is_one_line(tmp_path: Path) -> None:
    import pickle

    from resnet_tools.checkpoints.formats import pdparams

    cut = tmp_path / "cut.pdparams"
    cut.write_bytes(pickle.dumps({"w": np.zeros(100, "float32")}, protocol=4)[:50])
    with pytest.raises(ResNetError, match=r"^cannot read .*cut\.pdparams as a paddle checkpoint: \w+"):
        pdparams.read_paddle(cut, None)
    empty = tmp_path / "empty.pdparams"
    empty.write_bytes(b"")
    with pytest.raises(ResNetError, match=r"empty\.pdparams as a paddle checkpoint: EOFError: Ran out of input$"):
        pdparams.read_paddle(empty, None)


def test_pdparams_are_written_as_paddle_saves_them(tmp_path: Path) -> None:
    """Protocol 4 (paddle.save's), and no memo: each array's bytes are written and let go (fast mode)."""
    import pickletools

    from resnet_tools.checkpoints.formats import write_pickled_state

    path = tmp_path / "w.pdparams"
    write_pickled_state({"a": np.ones(3, "float32"), "b": np.zeros(2, "float32")}, path)
    data = path.read_bytes()
    assert data[:2] == b"\x80\x04"
    assert not [op for op, _, _ in pickletools.genops(data) if op.name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT")]


def _paddle_file(path: Path, state: dict[str, np.ndarray], wrap: bool = False) -> Path:
    from resnet_tools.checkpoints.formats import write_pickled_state

    write_pickled_state({"state_dict": {f"model.{k}": v for k, v in state.items()}} if wrap else state, path)
    return path


def _paddle_resnet18() -> dict[str, np.ndarray]:
    from resnet_spec import get_spec
    from resnet_spec.naming import native_table
    from resnet_spec.random_weights import random_weights

    spec = get_spec("resnet18")
    weights = random_weights(spec, seed=0)
    from resnet_spec.naming import to_native

    return {ne.key: to_native(ne.entry, "paddle", weights[ne.entry.name]) for ne in native_table(spec, "paddle")}


def test_read_paddle_records_the_wrapper_the_mapping_and_its_source(tmp_path: Path) -> None:
    """The reader returns the state dict as found (native keys, its wrapper, no mapping: readers do not map); the
    pipeline's map step maps it by names or structure."""
    from resnet_tools.checkpoints.formats import FORMATS, Container, pdparams, read_checkpoint

    state = _paddle_resnet18()
    raw = pdparams.read_paddle(_paddle_file(tmp_path / "plain.pdparams", state), None)
    assert raw.native is not None and set(raw.native) == set(state) and raw.mapping is None and not raw.weights
    fmt = FORMATS["paddle"]
    plain = read_checkpoint(tmp_path / "plain.pdparams", fmt)
    assert plain.metadata == {"source_framework": "paddle"} and plain.container == Container()
    assert plain.mapping is not None and plain.mapping.framework == "paddle" and plain.notes == []
    wrapped = read_checkpoint(_paddle_file(tmp_path / "wrapped.pdparams", state, wrap=True), fmt)
    assert wrapped.container == Container(("state_dict",), "model.", False)
    assert wrapped.notes == ["state dict found under 'state_dict'", "key prefix 'model.' removed"]
    assert set(wrapped.weights) == set(plain.weights)
    own = {k.replace("conv", "cv").replace("bn", "norm"): v for k, v in state.items()}  # a naming of its own
    mapped = read_checkpoint(_paddle_file(tmp_path / "own.pdparams", own), fmt)
    assert mapped.spec is not None and mapped.spec.name == "resnet18" and mapped.notes
    with pytest.raises(ResNetError, match=r"own\.pdparams: .*does not fit resnet34"):
        read_checkpoint(tmp_path / "own.pdparams", fmt, "resnet34")


def test_read_paddle_names_the_file_in_every_refusal(tmp_path: Path) -> None:
    from resnet_tools.checkpoints.formats import FORMATS, pdparams, read_checkpoint, write_pickled_state

    listing = tmp_path / "listing.pdparams"
    write_pickled_state([np.zeros(3, "float32")], listing)
    with pytest.raises(ResNetError, match=r"listing\.pdparams is not a state dict"):
        pdparams.read_paddle(listing, None)
    odd = _paddle_file(tmp_path / "odd.pdparams", {"head.weight": np.zeros((3, 3, 3), "float32")})
    with pytest.raises(ResNetError, match=r"odd\.pdparams"):
        read_checkpoint(odd, FORMATS["paddle"])


def test_lazy_tensors_pickle_to_the_bytes_of_their_arrays(tmp_path: Path) -> None:
    from resnet_tools.checkpoints.formats import write_pickled_state
    from resnet_tools.checkpoints.lazy import LazyArray

    arrays = {"a": np.arange(12, dtype="float32").reshape(3, 4), "b": np.ones(5, dtype="float64")}
    lazy = {k: LazyArray(v.shape, v.dtype, lambda v=v: v) for k, v in arrays.items()}
    write_pickled_state(arrays, tmp_path / "plain.pdparams")
    write_pickled_state(lazy, tmp_path / "lazy.pdparams")
    assert (tmp_path / "plain.pdparams").read_bytes() == (tmp_path / "lazy.pdparams").read_bytes()


def test_paddles_name_table_is_left_out(tmp_path: Path) -> None:
    from resnet_spec import get_spec
    from resnet_spec.random_weights import random_weights
    from resnet_tools.checkpoints.formats import Checkpoint, format_for, read_checkpoint, write_checkpoint
    from resnet_tools.checkpoints.formats.pdparams import _PADDLE_NAME_TABLE
    from resnet_tools.checkpoints.formats.pdparams import write_pickled_state as write_state

    spec = get_spec("resnet18")
    plain = tmp_path / "w.pdparams"
    write_checkpoint(Checkpoint(random_weights(spec, seed=0)), spec, plain, format_for(plain))
    import pickle

    with open(plain, "rb") as fh:
        state = pickle.load(fh)
    state[_PADDLE_NAME_TABLE] = {"conv1.weight": "conv2d_0.w_0"}  # what paddle.save adds
    with_table = tmp_path / "paddle_saved.pdparams"
    write_state(state, with_table)
    ckpt = read_checkpoint(with_table, format_for(with_table))
    assert len(ckpt.weights) == len(random_weights(spec, seed=0))


def test_a_plain_pickle_saved_as_pt_is_one_line_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pickle that runs code, named .pt (not written by torch.save): refused in one line, torch's own warning
    about its protocol not printed, the payload not run, nothing written (``export --int8`` reads it the same way)."""
    import pickle
    import warnings

    from resnet_tools.cli import main

    marker, evil = tmp_path / "payload-ran", tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"conv1.weight": _RunsCode(marker, "system")}, protocol=4))
    out = tmp_path / "out.onnx"
    with warnings.catch_warnings(record=True) as seen:  # what a user's terminal would show (pytest hides warnings)
        warnings.simplefilter("always")
        assert main(["export", str(evil), str(out), "--format", "onnx", "--int8"]) == 2
    assert not [str(w.message) for w in seen if "pickle" in str(w.message)]
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read") and "evil.pt" in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists() and not out.exists()
