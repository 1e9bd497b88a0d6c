"""One backend's benchmark rows, run in its own process (``python -m resnet_tools.bench.worker``).

A separate process per backend pins threads before the framework loads, keeps paddle and
TensorFlow apart, and lets each row measure its own peak memory. Prints one JSON object per row.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.bench.allocator import MODES, set_malloc
from resnet_tools.bench.gpu import path_precision
from resnet_tools.bench.rows import Row
from resnet_tools.core.threads import threads_env

Runner = Callable[[], object]
#: (execution path, implementation "ours"/"official", a builder of the timed callable, or of such builders)
PathEntry = tuple[str, str, Callable[..., Any]]

# keras.applications models with the same architecture as ours (names, biases, strides, eps).
KERAS_OFFICIAL = {
    "resnet50v1": "ResNet50",
    "resnet101v1": "ResNet101",
    "resnet152v1": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}
PADDLE_OFFICIAL = {
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext50_64x4d",
    "resnext101_32x4d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
}


def set_threads_env(threads: int) -> None:
    """Pin every math library in this process before any framework is imported."""
    os.environ.update(threads_env(threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, the peak resident set size."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_group(
    rows: list[Row],
    builds: list[Callable[[], Runner]],
    macs: int,
    warmup: int,
    repeats: int,
    min_time: float,
    gpu_memory: object | None = None,
) -> None:
    """Time the implementations of one path INTERLEAVED (round-robin), so that their ratio is fair on a
    shared machine; one-off cost and peak memory are measured per implementation before the rounds.
    GPU runners synchronise the device themselves; ``gpu_memory`` resets and reads its peak counter."""
    runners: list[Runner | None] = []
    for row, build in zip(rows, builds, strict=True):
        reset_peak_rss()
        start = time.perf_counter()
        try:
            if gpu_memory is not None:
                gpu_memory.begin()
            run = build()
            run()  # the first call traces / compiles (and autotunes cuDNN: its trial workspaces are not counted)
            row.one_off_s = time.perf_counter() - start
            if gpu_memory is not None:
                gpu_memory.reset()
            for _ in range(warmup):
                run()
            row.peak_rss_mb = peak_rss_mb()
            if gpu_memory is not None:
                row.peak_gpu_mb = getattr(run, "peak_mb", 0.0) or gpu_memory.peak_mb()
            runners.append(run)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            runners.append(None)
    live = [(row, run) for row, run in zip(rows, runners, strict=True) if run is not None]
    times: dict[int, list[float]] = {id(row): [] for row, _ in live}
    deadline = time.perf_counter() + min_time
    rounds = 0
    while live and (rounds < repeats or (time.perf_counter() < deadline and rounds < 10 * repeats)):
        for row, run in live:
            t0 = time.perf_counter()
            run()
            times[id(row)].append(time.perf_counter() - t0)
        rounds += 1
    for row, _ in live:
        ts = sorted(times[id(row)])
        med = statistics.median(ts)
        row.samples = len(ts)
        row.latency_ms_median = med * 1000
        row.latency_ms_p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))] * 1000
        row.latency_ms_min, row.latency_ms_max = ts[0] * 1000, ts[-1] * 1000
        row.spread = row.latency_ms_p90 / row.latency_ms_median
        row.images_per_s = row.batch / med
        row.gflops = 2 * macs * (3 if row.mode == "train" else 1) * row.images_per_s / 1e9


# Each backend's paths: (path, implementation, build). ``build()`` makes the model and returns the timed
# callable; the builders below are module functions bound with functools.partial (no nested closures).


def _labels(name: str, batch: int) -> np.ndarray:
    """Train-mode targets within the model's classes (the spec's, not a restated 1000)."""
    from resnet_spec import get_spec

    return np.random.default_rng(0).integers(0, get_spec(name).num_classes, batch)


def _trainer(backend: str, name: str, x: np.ndarray) -> Runner:
    """A step of ``resnet train``: the backend's ``Trainer`` (SGD with momentum and weight decay, the gradient
    norm recorded, NCHW numpy in), the same in every framework."""
    import importlib

    from resnet_spec.optim import OptimizerConfig

    mod = importlib.import_module(f"resnet_{backend}")
    trainer = mod.Trainer(mod.create_model(name), OptimizerConfig("sgd", lr=0.01, momentum=0.9, weight_decay=5e-4))
    labels = _labels(name, x.shape[0])
    return lambda: trainer.step(x, labels, 0.01)


def _nchw(batch: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32")


# ---- torch ----------------------------------------------------------------------------------------------


def _torch_ours(name: str) -> Any:
    import resnet_torch

    return resnet_torch.create_model(name).eval()


def _torch_train(name: str, x: Any) -> Runner:
    import torch

    model = _torch_ours(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    labels = torch.from_numpy(_labels(name, x.shape[0]))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()

    return step


def _torch_eager(make: Callable[[], Any], x: Any, channels_last: bool = False) -> Runner:
    import torch

    model, inp = make(), x
    if channels_last:
        model, inp = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

    def run() -> object:
        with torch.inference_mode():
            return model(inp)

    return run


def _torch_compiled(make: Callable[[], Any], x: Any) -> Runner:
    import torch

    return _torch_eager(lambda: torch.compile(make()), x)


def _onnxruntime(make: Callable[[], Any], x: Any, threads: int) -> Runner:
    """torch's ONNX export of the model (static batch), run by onnxruntime on the CPU with ``threads`` threads;
    the export is part of the one-off cost."""
    import tempfile

    import resnet_torch.export
    from resnet_tools.core.backends import quiet_output
    from resnet_tools.export.runtimes import onnx_runner

    inp = x.numpy()
    with tempfile.TemporaryDirectory(prefix="resnet-bench-onnx-") as tmp:
        path = f"{tmp}/model.onnx"
        with quiet_output():
            resnet_torch.export.export_artifact(make(), "onnx", path, input_shape=tuple(inp.shape))
        run = onnx_runner(path, threads=threads)  # the session holds the graph; the file may go
    return lambda: run(inp)


#: The torch comparator where torchvision is missing: transformers' ResNet, v1.5 like torchvision's, computing
#: our logits from our weights (parity_tests/test_zoo_compat.py); labelled as the stand-in it is.
HF_IMPL = "HF transformers (stand-in)"


def hf_resnet_config(name: str) -> dict[str, Any] | None:
    """transformers' ``ResNetConfig`` arguments for one of our models, or None where it has no equivalent
    (grouped, wide, V1 stride placement, pre-activation, CIFAR stem)."""
    from resnet_spec import get_spec

    spec = get_spec(name)
    plain = spec.variant == "v1.5" and spec.groups == 1 and spec.width_per_group == 64
    if not plain or spec.stem.kind != "imagenet" or any(spec.replace_stride_with_dilation):
        return None
    return {"embedding_size": spec.stem.width, "hidden_sizes": [w * spec.expansion for w in spec.widths],
            "depths": list(spec.depths), "layer_type": spec.block, "num_labels": spec.num_classes,
            "downsample_in_bottleneck": False}  # fmt: skip


def _hf_resnet(name: str) -> Any:
    """transformers' model as a module that maps images to logits (``.to(memory_format=...)`` works on it)."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = ResNetForImageClassification(ResNetConfig(**(hf_resnet_config(name) or {})))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=x).logits  # type: ignore[no-any-return]

    return Logits().eval()


def torch_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import torch

    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, size, size)
    if mode == "train":
        yield "eager", "ours", partial(_torch_train, name, x)
        yield "Trainer", "ours", partial(_trainer, "torch", name, _nchw(batch, size))
        return
    ours = partial(_torch_ours, name)
    yield "eager NCHW", "ours", partial(_torch_eager, ours, x)
    yield "channels_last", "ours", partial(_torch_eager, ours, x, True)
    yield "torch.compile", "ours", partial(_torch_compiled, ours, x)
    if all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnxscript")):
        yield "ONNX Runtime", "ours", partial(_onnxruntime, ours, x, threads)
    try:
        from torchvision import models as tvm
    except Exception:  # not installed with the CPU wheel here: Hugging Face's ResNet stands in where it can
        if hf_resnet_config(name) is not None and importlib.util.find_spec("transformers") is not None:
            yield "eager NCHW", HF_IMPL, partial(_torch_eager, partial(_hf_resnet, name), x)
            yield "channels_last", HF_IMPL, partial(_torch_eager, partial(_hf_resnet, name), x, True)
        return
    if hasattr(tvm, name):
        official = lambda: getattr(tvm, name)().eval()  # noqa: E731
        yield "eager NCHW", "torchvision", partial(_torch_eager, official, x)
        yield "channels_last", "torchvision", partial(_torch_eager, official, x, True)


# ---- paddle ---------------------------------------------------------------------------------------------


def _paddle_ours(name: str) -> Any:
    import resnet_paddle

    return resnet_paddle.create_model(name)


def _paddle_train(name: str, x: Any) -> Runner:
    import paddle

    model = _paddle_ours(name)
    model.train()
    opt = paddle.optimizer.SGD(learning_rate=0.01, parameters=model.parameters())
    labels = paddle.to_tensor(_labels(name, x.shape[0]))

    def step() -> None:
        loss = paddle.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        opt.clear_grad()

    return step


def _paddle_dygraph(make: Callable[[], Any], x: Any) -> Runner:
    import paddle

    model = make()
    model.eval()

    def run() -> object:
        with paddle.no_grad():
            return model(x)

    return run


def _paddle_inference(make: Callable[[], Any], x: np.ndarray, threads: int) -> Runner:
    from resnet_paddle.runtime import inference_predictor

    predictor = inference_predictor(make(), 3, threads=threads)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    run: Runner = predictor.run
    return run


def paddle_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import paddle

    from resnet_paddle.runtime import cpu_threads

    paddle.set_device("cpu")
    cpu_threads(threads)  # paddle's dygraph would run on one thread, whatever the other frameworks get
    x_np = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32")
    x = paddle.to_tensor(x_np)
    if mode == "train":
        yield "dygraph", "ours", partial(_paddle_train, name, x)
        yield "Trainer", "ours", partial(_trainer, "paddle", name, x_np)
        return
    impls: list[tuple[str, Callable[[], Any]]] = [("ours", partial(_paddle_ours, name))]
    if name in PADDLE_OFFICIAL:
        from paddle.vision import models as pvm

        impls.append(("paddle.vision", getattr(pvm, name)))
    for impl, make in impls:
        yield "dygraph", impl, partial(_paddle_dygraph, make, x)
    for impl, make in impls:
        yield "Paddle Inference", impl, partial(_paddle_inference, make, x_np, threads)


# ---- keras ----------------------------------------------------------------------------------------------


def _keras_ours(name: str) -> Any:
    import resnet_keras

    return resnet_keras.create_model(name)


def _keras_official(name: str, size: int) -> Any:
    import keras

    app = getattr(keras.applications, KERAS_OFFICIAL[name])
    return app(weights=None, classifier_activation=None, input_shape=(size, size, 3))


def _keras_train(name: str, x: np.ndarray) -> Runner:
    import keras

    model = _keras_ours(name)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    labels = _labels(name, x.shape[0])
    return lambda: model.train_on_batch(x, labels)


def _keras_eager(make: Callable[[], Any], x: np.ndarray) -> Runner:
    model = make()
    return lambda: model(x, training=False)


def _keras_tf_function(make: Callable[[], Any], x: np.ndarray, xla: bool) -> Runner:
    import tensorflow as tf

    model = make()
    fn = tf.function(lambda t: model(t, training=False), jit_compile=xla)
    inp = tf.constant(x)
    return lambda: fn(inp)


def _keras_predict(make: Callable[[], Any], x: np.ndarray) -> Runner:  # compiled by Keras on every backend
    model = make()
    return lambda: model.predict(x, batch_size=x.shape[0], verbose=0)


def keras_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import keras

    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype("float32")
    if mode == "train":
        yield "train_on_batch", "ours", partial(_keras_train, name, x)
        yield "Trainer", "ours", partial(_trainer, "keras", name, _nchw(batch, size))
        return
    impls: list[tuple[str, Callable[[], Any]]] = [("ours", partial(_keras_ours, name))]
    if name in KERAS_OFFICIAL:
        impls.append(("keras.applications", partial(_keras_official, name, size)))
    for impl, make in impls:
        yield "eager call", impl, partial(_keras_eager, make, x)
        if keras.backend.backend() == "tensorflow":
            yield "tf.function", impl, partial(_keras_tf_function, make, x, False)
            yield "XLA (jit_compile)", impl, partial(_keras_tf_function, make, x, True)
        yield "predict", impl, partial(_keras_predict, make, x)


PATHS = {"torch": torch_paths, "paddle": paddle_paths, "keras": keras_paths}


def gpu_paths(backend: str, name: str, batch: int, size: int, mode: str) -> Iterator[PathEntry]:
    """The GPU paths of one backend (``resnet_tools.bench.gpu``), with the official zoo's model alongside."""
    from resnet_tools.bench import gpu as bench_gpu

    if backend == "torch":
        return bench_gpu.torch_paths(name, batch, size, mode)
    if backend == "paddle":
        official = None
        if name in PADDLE_OFFICIAL:
            from paddle.vision import models as pvm

            official = getattr(pvm, name)
        return bench_gpu.paddle_paths(name, batch, size, mode, official)
    import keras

    def keras_official() -> keras.Model:
        app = getattr(keras.applications, KERAS_OFFICIAL[name])
        return app(weights=None, classifier_activation=None, input_shape=(size, size, 3))

    return bench_gpu.keras_paths(name, batch, size, mode, keras_official if name in KERAS_OFFICIAL else None)


def gpu_memory(backend: str) -> object:
    """The peak-memory probe of a backend's GPU rows (torch's allocator counter; JAX rows carry their own)."""
    from resnet_tools.bench.gpu import NoMemory, TorchMemory

    return TorchMemory() if backend == "torch" else NoMemory()


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=[*PATHS, "peak"], required=True)
    p.add_argument("--models", default="resnet50")
    p.add_argument("--batches", default="1")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--mode", default="eval")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--min-time", type=float, default=3.0)
    p.add_argument("--paths", default="", help="comma-separated path names to keep (default: all)")
    p.add_argument("--malloc", choices=MODES, default="kept")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = p.parse_args(argv)
    set_threads_env(args.threads)
    set_malloc(args.malloc)  # before any framework allocates: "kept" spares re-faulting big activations
    if args.backend == "peak":
        if args.device == "gpu":
            from resnet_tools.bench.gpu import gpu_info, gpu_peaks

            peaks = gpu_peaks()
            print(
                json.dumps({"peak_gflops": peaks["fp32"], "peaks": peaks, "gpu": gpu_info(), "threads": args.threads}),
                flush=True,
            )
            return 0
        from resnet_tools.bench.ceiling import cpu_ceiling

        print(json.dumps({**cpu_ceiling(args.threads), "threads": args.threads}), flush=True)
        return 0
    from resnet_spec import count_macs, get_spec

    keep = {s.strip() for s in args.paths.split(",") if s.strip()}
    for name in args.models.split(","):
        macs = count_macs(get_spec(name), args.size, args.size)
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                if args.device == "gpu":
                    paths = list(gpu_paths(args.backend, name, batch, args.size, args.mode))
                else:
                    paths = list(PATHS[args.backend](name, batch, args.size, args.mode, args.threads))
            except Exception as exc:
                row = Row(args.backend, name, "setup", "ours", batch, args.mode, args.threads, error=repr(exc)[:200])
                print(json.dumps(asdict(row)), flush=True)
                continue
            groups: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
            for path, impl, build in paths:
                if not keep or path in keep:
                    groups.setdefault(path, []).append((impl, build))
            for path, members in groups.items():
                rows = [
                    Row(
                        args.backend,
                        name,
                        path,
                        impl,
                        batch,
                        args.mode,
                        args.threads,
                        device=args.device,
                        precision=path_precision(path),
                    )
                    for impl, _ in members
                ]
                try:
                    measure_group(
                        rows,
                        [b for _, b in members],
                        macs,
                        args.warmup,
                        args.repeats,
                        args.min_time,
                        gpu_memory=gpu_memory(args.backend) if args.device == "gpu" else None,
                    )
                except Exception:
                    for row in rows:
                        row.error = row.error or traceback.format_exc(limit=1).splitlines()[-1][:200]
                for row in rows:
                    print(json.dumps(asdict(row)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
