"""Official weights by id, offline: a loopback HTTP server serves checkpoints the tests make, and a
weights table like the real one points at it (``RESNET_WEIGHTS_TABLE``). Downloads, hashes, retries,
the cache, the mirror, and every command that takes an id."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from parity_tests.conftest import LOADED
from resnet_spec import get_spec
from resnet_spec.errors import SpecError
from resnet_spec.official import TABLE_PATH, get_official, load_table, official_weights
from resnet_spec.random_weights import random_weights
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints.formats import FORMATS, Checkpoint, read_checkpoint, write_checkpoint
from resnet_tools.cli import main
from resnet_tools.core.diffs import tensor_diff
from resnet_tools.parity.engine import seeded_inputs

ROOT = Path(__file__).resolve().parents[2]


class Files:
    """What the server holds and how it misbehaves: per path, a queue of modes consumed one per request
    (``ok`` once the queue is empty): ok, 404, 500, truncate (half the promised bytes, then hang up),
    slow (the body in small pieces), wrong (other bytes than the published file)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.modes: dict[str, list[str]] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    def next_mode(self, path: str) -> str:
        with self.lock:
            self.hits[path] += 1
            queue = self.modes.get(path, [])
            return queue.pop(0) if queue else "ok"


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            mode = files.next_mode(self.path)
            body = files.data.get(self.path)
            if body is None or mode == "404":
                self.send_error(404, "Not Found")
                return
            if mode == "500":
                self.send_error(500, "Internal Server Error")
                return
            if mode == "wrong":
                body = bytes(reversed(body))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            step = len(body) // 20 + 1 if mode == "slow" else len(body)
            for i in range(0, len(body), step):
                self.wfile.write(body[i : i + step])
                if mode == "slow":
                    time.sleep(0.05)

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Files, ThreadingHTTPServer]]:
    files = Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files, httpd
    httpd.shutdown()
    httpd.server_close()


def _dead_url() -> str:
    """A loopback port nobody listens on (connection refused at once: the offline case)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _checkpoint(tmp_path: Path, name: str, fmt: str, seed: int, **options: object) -> bytes:
    spec = get_spec(name, **options)  # type: ignore[arg-type]
    path = tmp_path / f"made{FORMATS[fmt].extensions[0]}"
    write_checkpoint(Checkpoint(random_weights(spec, seed=seed)), spec, path, FORMATS[fmt])
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.fixture
def zoo(tmp_path: Path, server: tuple[str, Files, ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch) -> dict:
    """A weights table shaped like the real one (same sources and ids), pointing at the loopback server,
    with the hashes of checkpoints made here; cache and table through the environment."""
    base, files, _httpd = server
    r18 = _checkpoint(tmp_path, "resnet18", "torch", seed=3)
    p18 = _checkpoint(tmp_path, "resnet18", "paddle", seed=4)
    sha = hashlib.sha256(r18).hexdigest()
    files.data["/tv/resnet18-x.pth"] = r18
    files.data["/pd/resnet18.pdparams"] = p18
    table = {
        "schema_version": 1,
        "sources": {
            "torchvision": {
                "description": "test",
                "base_url": f"{base}/tv/",
                "format": "torch",
                "weights": {
                    "resnet18.IMAGENET1K_V1": {"model": "resnet18", "file": "resnet18-x.pth", "sha256": sha[:8],
                                               "top1": 69.758, "top5": 89.078, "preprocessing": "torchvision"},
                    # the same bytes under a V2-style entry: only the preprocessing differs
                    "resnet18.IMAGENET1K_V2": {"model": "resnet18", "file": "resnet18-x.pth", "sha256": sha,
                                               "preprocessing": "torchvision_v2", "default": True},
                },
            },
            "paddle": {
                "description": "test",
                "base_url": f"{base}/pd/",
                "format": "paddle",
                "weights": {
                    "resnet18": {"model": "resnet18", "file": "resnet18.pdparams",
                                 "md5": hashlib.md5(p18).hexdigest(), "preprocessing": "torchvision"},
                },
            },
        },
    }  # fmt: skip
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESNET_WEIGHTS_TABLE", str(path))
    monkeypatch.setenv("RESNET_CACHE", str(cache))
    monkeypatch.delenv("RESNET_WEIGHTS_MIRROR", raising=False)
    return {"base": base, "files": files, "cache": cache, "table": path, "r18": r18, "p18": p18, "sha": sha}


def _cached(zoo: dict) -> list[Path]:
    return sorted(p for p in zoo["cache"].rglob("*") if p.is_file() and not p.name.endswith(".lock"))


# ---- the real table ------------------------------------------------------------------------------------


def test_real_table_facts_hold_together() -> None:
    table = load_table(TABLE_PATH)
    assert len(table) == 38 and {w.source for w in table.values()} == {"torchvision", "paddle", "keras"}
    for w in table.values():
        get_spec(w.model)  # every model is in the zoo
        assert w.url.endswith("/" + w.file)
        if w.source == "torchvision":  # the hash torch.hub checks is the 8 hex digits in the file name
            assert w.sha256 and w.file == f"{w.name.split('.')[0]}-{w.sha256}.pth"
            assert w.preprocessing == (
                "torchvision_v2" if w.name.endswith("V2") or "64x4d" in w.name else "torchvision"
            )
        else:
            assert w.md5 and len(w.md5) == 32
        assert (w.num_classes == 0) == w.name.endswith(".notop")
    # published figures where the source publishes them (FACTS.md: resnet50 V1 76.130, V2 80.858)
    assert get_official("torchvision:resnet50.IMAGENET1K_V1").top1 == 76.130
    assert get_official("torchvision:resnet50").top1 == 80.858  # DEFAULT = IMAGENET1K_V2
    assert get_official("keras:resnet50v1").id == "keras:resnet50"  # our model name finds keras' file
    assert get_official("keras:resnet50v2.notop").spec().num_classes == 0
    assert get_official("paddle:wide_resnet50_2").url.endswith("/wide_resnet50_2.pdparams")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("timm:resnet50", "unknown weights source 'timm'"),
        ("torchvision:resnet51", "did you mean torchvision:resnet50"),
        ("keras:resnet50v1.top", "unknown weights"),
    ],
)
def test_unknown_ids_are_one_line(ref: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", ref]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(model="resnet19"), "unknown model 'resnet19'"),
        (lambda e: e.update(sha256="xyz"), "does not match"),
        (lambda e: e.update(preprocessing="imagenet"), "unknown preprocessing 'imagenet'"),
        (lambda e: e.update(top1=95.0), "top5 89.078 is below top1 95.0"),
        (lambda e: e.update(md5="0" * 32), "is valid under each of"),  # two hashes: which one?
    ],
)
def test_bad_tables_are_refused(edit, message: str, zoo: dict) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(zoo["table"].read_text())
    edit(doc["sources"]["torchvision"]["weights"]["resnet18.IMAGENET1K_V1"])
    bad = zoo["table"].with_name("bad.yaml")
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_table(bad)


def test_two_defaults_for_one_model_are_refused(zoo: dict) -> None:
    doc = yaml.safe_load(zoo["table"].read_text())
    doc["sources"]["torchvision"]["weights"]["resnet18.IMAGENET1K_V1"]["default"] = True
    bad = zoo["table"].with_name("bad.yaml")
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SpecError, match="several defaults for resnet18"):
        load_table(bad)


# ---- downloads -------------------------------------------------------------------------------------------


def test_download_verify_cache_then_offline_cache_hit(
    zoo: dict, server: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    assert official_weights()["torchvision:resnet18.IMAGENET1K_V2"].url.startswith(zoo["base"])
    assert main(["fetch", "torchvision:resnet18.IMAGENET1K_V1"]) == 0
    (cached,) = _cached(zoo)
    assert cached.read_bytes() == zoo["r18"] and cached.parent.name == "torchvision"
    assert f"sha256 {zoo['sha'][:8]} verified" in capsys.readouterr().out
    assert main(["fetch", "torchvision:resnet18.IMAGENET1K_V1"]) == 0
    assert "already in the cache" in capsys.readouterr().out
    _base, files, httpd = server
    httpd.shutdown()  # no server at all from here on: the cache answers
    assert main(["inspect", "torchvision:resnet18"]) == 0  # the default entry, same file
    out = capsys.readouterr().out
    assert "resnet18" in out and "official:  torchvision:resnet18.IMAGENET1K_V2" in out
    assert files.hits["/tv/resnet18-x.pth"] == 1


def test_wrong_hash_caches_nothing(zoo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    zoo["files"].modes["/tv/resnet18-x.pth"] = ["wrong"]
    assert main(["fetch", "torchvision:resnet18.IMAGENET1K_V1"]) == 2
    err = capsys.readouterr().err
    assert "is not the published file" in err and f"the published one {zoo['sha'][:8]}" in err
    assert _cached(zoo) == [] and zoo["files"].hits["/tv/resnet18-x.pth"] == 1  # a wrong file is not retried
    zoo["files"].modes["/pd/resnet18.pdparams"] = ["wrong"]
    assert main(["convert", "paddle:resnet18", str(zoo["cache"].parent / "x.pth")]) == 2
    assert "md5" in capsys.readouterr().err and _cached(zoo) == []
    assert not (zoo["cache"].parent / "x.pth").exists()


@pytest.mark.parametrize(("mode", "hits", "message"), [("404", 1, "HTTP 404"), ("500", 3, "HTTP 500"),
                                                        ("truncate", 3, "transfer cut short")])  # fmt: skip
def test_failed_transfers_cache_nothing(
    mode: str, hits: int, message: str, zoo: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo["files"].modes["/tv/resnet18-x.pth"] = [mode] * 5
    assert main(["fetch", "torchvision:resnet18"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert zoo["files"].hits["/tv/resnet18-x.pth"] == hits  # transient failures retried, a 404 not
    assert _cached(zoo) == []


def test_interrupted_download_is_retried(zoo: dict) -> None:
    zoo["files"].modes["/tv/resnet18-x.pth"] = ["truncate", "500"]
    assert main(["fetch", "torchvision:resnet18"]) == 0
    assert [p.read_bytes() for p in _cached(zoo)] == [zoo["r18"]]
    assert zoo["files"].hits["/tv/resnet18-x.pth"] == 3


def test_two_processes_fetching_one_id_download_it_once(zoo: dict) -> None:
    zoo["files"].modes["/tv/resnet18-x.pth"] = ["slow", "slow"]
    cmd = [sys.executable, "-m", "resnet_tools.cli", "fetch", "torchvision:resnet18"]
    procs = [subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [p.read_bytes() for p in _cached(zoo)] == [zoo["r18"]]
    assert zoo["files"].hits["/tv/resnet18-x.pth"] == 1  # the second waited on the lock, then found the file


def test_mirror_serves_the_same_files(zoo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load(zoo["table"].read_text())
    doc["sources"]["paddle"]["base_url"] = _dead_url() + "/gone/"  # the origin is unreachable
    zoo["table"].write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("RESNET_WEIGHTS_TABLE", str(zoo["table"]))
    zoo["files"].data["/mirror/paddle/resnet18.pdparams"] = zoo["p18"]
    monkeypatch.setenv("RESNET_WEIGHTS_MIRROR", zoo["base"] + "/mirror/")
    assert main(["fetch", "paddle:resnet18"]) == 0
    assert [p.read_bytes() for p in _cached(zoo)] == [zoo["p18"]]


def test_offline_says_how_to_place_the_file_by_hand(
    zoo: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESNET_WEIGHTS_MIRROR", _dead_url())
    assert main(["predict", "x.png", "--weights", "paddle:resnet18"]) == 2
    err = capsys.readouterr().err
    assert "resnet fetch paddle:resnet18 --file FILE" in err and len(err.strip().splitlines()) == 1
    by_hand = tmp_path / "downloaded elsewhere.pdparams"
    by_hand.write_bytes(zoo["p18"][:-1] + b"\0")
    assert main(["fetch", "paddle:resnet18", "--file", str(by_hand)]) == 2
    assert "not the published file" in capsys.readouterr().err and _cached(zoo) == []
    by_hand.write_bytes(zoo["p18"])
    assert main(["fetch", "paddle:resnet18", "--file", str(by_hand)]) == 0
    assert [p.read_bytes() for p in _cached(zoo)] == [zoo["p18"]]


def test_urls_need_and_check_a_full_sha256(zoo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    url = zoo["base"] + "/tv/resnet18-x.pth"
    assert main(["inspect", url]) == 2
    assert "pass --sha256" in capsys.readouterr().err
    assert main(["inspect", url, "--sha256", zoo["sha"][:8]]) == 2
    assert "64 hex digits" in capsys.readouterr().err
    assert main(["inspect", url, "--sha256", "0" * 64]) == 2
    assert "not the published file" in capsys.readouterr().err and _cached(zoo) == []
    assert main(["inspect", url, "--sha256", zoo["sha"].upper()]) == 0
    assert "resnet18" in capsys.readouterr().out
    (cached,) = _cached(zoo)
    assert cached.name == "resnet18-x.pth" and cached.read_bytes() == zoo["r18"]


# ---- commands that take an id ----------------------------------------------------------------------------


def test_convert_by_id_keeps_the_weights_and_records_provenance(zoo: dict, tmp_path: Path) -> None:
    if not {"torch", "paddle"} <= set(LOADED):
        pytest.skip("needs torch and paddle")
    out = tmp_path / "r18.pdparams"
    assert main(["convert", "torchvision:resnet18", str(out), "--verify"]) == 0
    source = random_weights(get_spec("resnet18"), seed=3)
    written = read_checkpoint(out, FORMATS["paddle"]).weights
    assert set(written) == set(source) and all(np.array_equal(written[k], source[k]) for k in source)
    st = tmp_path / "r18.safetensors"
    assert main(["convert", "torchvision:resnet18", str(st)]) == 0
    meta = read_checkpoint(st, FORMATS["safetensors"]).metadata
    assert meta["weights_id"] == "torchvision:resnet18.IMAGENET1K_V2" and meta["preprocessing"] == "torchvision_v2"
    assert main(["convert", str(st), str(tmp_path / "again.npz")]) == 0  # provenance survives a second hop
    assert read_checkpoint(tmp_path / "again.npz", FORMATS["npz"]).metadata["preprocessing"] == "torchvision_v2"


def test_convert_refuses_a_taken_output_before_downloading(zoo: dict, tmp_path: Path) -> None:
    taken = tmp_path / "taken.pdparams"
    taken.write_bytes(b"keep")
    assert main(["convert", "torchvision:resnet18", str(taken)]) == 2
    assert zoo["files"].hits["/tv/resnet18-x.pth"] == 0 and taken.read_bytes() == b"keep"


def test_predict_uses_the_ids_preprocessing(zoo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from resnet_tools.hub.resolve import resolve_weights
    from resnet_tools.predict.run import predict

    if "torch" not in LOADED:
        pytest.skip("needs torch")
    image = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 460, 3), dtype=np.uint8)).save(image)
    runs = {}
    for ref in ("torchvision:resnet18.IMAGENET1K_V1", "torchvision:resnet18.IMAGENET1K_V2"):
        src = resolve_weights(ref)
        runs[ref] = predict([str(image)], str(src.path), preprocessing=src.preprocessing, path="eager", topk=3)
    v1, v2 = runs.values()
    assert (v1.preprocessing, v2.preprocessing) == ("torchvision", "torchvision_v2")
    assert v1.predictions[0].top != v2.predictions[0].top  # resize 256 vs 232: other pixels, other numbers
    assert main(["predict", str(image), "--weights", "torchvision:resnet18.IMAGENET1K_V2", "--path", "eager"]) == 0
    out = capsys.readouterr().out
    assert "preprocessing: torchvision_v2" in out and f"{v2.predictions[0].top[0][2]:.4f}" in out
    st = tmp_path / "v2.safetensors"
    assert main(["convert", "torchvision:resnet18.IMAGENET1K_V2", str(st)]) == 0
    again = predict([str(image)], str(st), backend="torch", path="eager", topk=3)
    assert again.preprocessing == "torchvision_v2"  # read back from the converted file's metadata
    np.testing.assert_allclose(
        [p for *_, p in again.predictions[0].top], [p for *_, p in v2.predictions[0].top], rtol=1e-6
    )


def test_parity_runs_on_the_checkpoint(zoo: dict, tmp_path: Path) -> None:
    if not {"torch", "paddle"} <= set(LOADED):
        pytest.skip("needs torch and paddle")
    out = tmp_path / "p.json"
    argv = ["parity", "--weights", "paddle:resnet18", "--backends", "torch,paddle", "--input", "2x3x64x80"]
    assert main([*argv, "--path", "eager", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    records = records["records"] if isinstance(records, dict) else records
    assert {r["model"] for r in records} == {"resnet18"} and len(records) == 2
    assert main([*argv, "--models", "resnet50"]) == 2  # the checkpoint decides the model


def test_parity_given_weights_are_the_checkpoints() -> None:
    spec = get_spec("resnet18", num_classes=7)
    weights = random_weights(spec, seed=9)
    got_spec, _rng, x, used = seeded_inputs("resnet18", (2, 3, 33, 47), 0, "float64", (spec, weights))
    assert got_spec is spec and x.dtype == np.float64
    assert all(used[k].dtype == np.float64 and np.array_equal(used[k], weights[k]) for k in weights)
    seeded = seeded_inputs("resnet18", (2, 3, 33, 47), 0, "float64")[3]
    assert not np.array_equal(seeded["fc.weight"][:7], used["fc.weight"])


def test_keras_notop_file_fills_the_headless_model(zoo: dict, tmp_path: Path) -> None:
    """A keras.applications include_top=False file (real legacy HDF5 layout) by id -> .pth; the torch
    model computes keras.applications' own pooled features."""
    if not {"torch", "keras"} <= set(LOADED):
        pytest.skip("needs torch and keras")
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    import resnet_torch

    app = keras.applications.ResNet50V2(weights=None, include_top=False, pooling="avg", input_shape=(97, 131, 3))
    rng = np.random.default_rng(5)
    for w in app.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape).astype("float32"))
        elif "kernel" not in w.path:
            w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))
    h5 = tmp_path / "notop.h5"
    with h5py.File(h5, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, app)
    data = h5.read_bytes()
    zoo["files"].data["/k/notop.h5"] = data
    doc = yaml.safe_load(zoo["table"].read_text())
    doc["sources"]["keras"] = {"description": "test", "base_url": zoo["base"] + "/k/", "format": "keras_h5",
                               "weights": {"resnet50v2.notop": {"model": "resnet50v2", "file": "notop.h5",
                                                                "md5": hashlib.md5(data).hexdigest(),
                                                                "num_classes": 0, "preprocessing": "tf"}}}  # fmt: skip
    zoo["table"].write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "notop.pth"
    assert main(["convert", "keras:resnet50v2.notop", str(out)]) == 0
    ckpt = read_checkpoint(out, FORMATS["torch"])
    spec = get_spec("resnet50v2", num_classes=0)
    model = resnet_torch.import_weights(resnet_torch.create_model(spec), ckpt.weights)
    x = rng.standard_normal((2, 97, 131, 3)).astype("float32")
    ours = resnet_torch.forward_numpy(model, x.transpose(0, 3, 1, 2))["logits"]
    assert tensor_diff(np.asarray(app(x, training=False)), ours).max_rel <= tolerance("float32", "cpu", "eval").rel


def test_zoo_lists_ids_and_cache_state(zoo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "torchvision:resnet18.IMAGENET1K_V1" in out and "69.758" in out and "3 checkpoints, 0 cached" in out
    assert main(["fetch", "paddle:resnet18"]) == 0
    capsys.readouterr()
    assert main(["zoo", "--source", "paddle"]) == 0
    assert "1 checkpoint, 1 cached" in capsys.readouterr().out
    assert main(["zoo", "--source", "timm"]) == 2
    assert "known: torchvision, paddle" in capsys.readouterr().err


def test_unwritable_cache_is_one_line(
    zoo: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RESNET_CACHE", str(blocker / "cache"))
    assert main(["fetch", "paddle:resnet18"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the weights cache" in err and "set RESNET_CACHE" in err
    assert zoo["files"].hits["/pd/resnet18.pdparams"] == 0


def test_sha256_only_with_urls(zoo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "torchvision:resnet18", "--sha256", "0" * 64]) == 2
    assert "carries its published hash" in capsys.readouterr().err
    assert zoo["files"].hits["/tv/resnet18-x.pth"] == 0


@pytest.mark.parametrize("tail", ["..", "%2e%2e", ".hidden"])
def test_url_file_names_stay_plain_names_in_the_cache(tail: str) -> None:
    """A URL ending in ``..`` (or a hidden name) gets a plain name inside its cache folder: the rename
    after a download cannot leave the folder or fail on it."""
    from resnet_tools.hub.cache import url_cached_path

    path = url_cached_path(f"https://example.org/weights/{tail}", "ab" * 32)
    assert path.name == "download" and path.parent.name == "ab" * 8
