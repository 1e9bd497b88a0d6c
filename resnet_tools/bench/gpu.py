"""GPU execution paths of ``resnet bench --device gpu`` (run inside ``resnet_tools.bench.worker``).

Every runner ends with a device synchronisation, so a timed call is the whole batch on the GPU. The
input lives on the device (no host copies in the timed region). cuDNN autotuning is on
(``cudnn.benchmark``) for torch; TF32 is OFF except on the paths named "tf32". The precision of a
path ("fp32", "tf32", "bf16", "fp16") selects the dense peak its throughput is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from resnet_spec import get_spec

Runner = Callable[[], object]
Build = Callable[[], Runner]
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def path_precision(path: str) -> str:
    """The math precision a path name states ("... bf16", "... tf32"); plain paths are fp32."""
    return next((p for p in PRECISIONS[1:] if p in path.split()), "fp32")


# ---- memory probes --------------------------------------------------------------------------------------


class TorchMemory:
    """Peak CUDA memory one implementation needs: the allocator's peak after its first call (so cuDNN's
    one-off autotuning trials are not counted) less what was allocated before it was built (the other
    implementation of the pair stays resident for the interleaved timing)."""

    def __init__(self) -> None:
        self.base = 0

    def begin(self) -> None:
        import torch

        torch.cuda.synchronize()
        self.base = torch.cuda.memory_allocated()

    def reset(self) -> None:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float:
        import torch

        return (torch.cuda.max_memory_allocated() - self.base) / 2**20


class NoMemory:
    """A framework without a resettable peak counter: the row's runner reports its own (or 0)."""

    def begin(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def peak_mb(self) -> float:
        return 0.0


# ---- dense peaks ----------------------------------------------------------------------------------------


def gpu_peaks(n: int = 8192, tries: int = 10) -> dict[str, float]:
    """Measured dense matmul throughput (GFLOP/s) of this GPU per precision, n x n x n, best of ``tries``."""
    try:
        import torch

        if torch.cuda.is_available():
            return _torch_peaks(n, tries)
    except ImportError:
        pass
    return _jax_peaks(n, tries)


def _torch_peaks(n: int, tries: int) -> dict[str, float]:
    import torch

    peaks = {}
    for precision, dtype, tf32 in (
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bf16", torch.bfloat16, False),
        ("fp16", torch.float16, False),
    ):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        best = float("inf")
        for _ in range(tries + 2):
            start.record()
            a @ b
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1000)
        peaks[precision] = 2 * n**3 / best / 1e9
    torch.backends.cuda.matmul.allow_tf32 = False
    return peaks


def _jax_peaks(n: int, tries: int) -> dict[str, float]:
    import time

    import jax
    import jax.numpy as jnp

    peaks = {}
    for precision, dtype, mode in (
        ("fp32", jnp.float32, "highest"),
        ("tf32", jnp.float32, "default"),
        ("bf16", jnp.bfloat16, "default"),
        ("fp16", jnp.float16, "default"),
    ):
        a = jnp.ones((n, n), dtype)
        with jax.default_matmul_precision(mode):
            f = jax.jit(lambda x, y: x @ y)
            f(a, a).block_until_ready()
            best = float("inf")
            for _ in range(tries):
                t0 = time.perf_counter()
                f(a, a).block_until_ready()
                best = min(best, time.perf_counter() - t0)
        peaks[precision] = 2 * n**3 / best / 1e9
    return peaks


def gpu_info() -> dict[str, Any]:
    """GPU name, driver, CUDA and cuDNN versions as the installed frameworks report them."""
    import contextlib
    import subprocess

    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            .stdout.strip()
            .splitlines()
        )
        if out:
            name, driver, memory = (s.strip() for s in out[0].split(","))
            info.update(gpu=name, driver=driver, gpu_memory=memory)
    with contextlib.suppress(ImportError):
        import torch

        if torch.cuda.is_available():
            info.setdefault("gpu", torch.cuda.get_device_name(0))
            info.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


# ---- torch ----------------------------------------------------------------------------------------------


def torch_paths(name: str, batch: int, size: int, mode: str) -> Iterator[tuple[str, str, Build]]:
    import torch

    import resnet_torch

    torch.backends.cudnn.benchmark = True  # autotuned conv algorithms (fixed shapes), for every row alike
    x = torch.randn(batch, 3, size, size, device="cuda")
    classes = get_spec(name).num_classes
    makers: dict[str, Callable[[], torch.nn.Module]] = {"ours": lambda: resnet_torch.create_model(name)}
    try:
        from torchvision import models as tvm

        if hasattr(tvm, name):
            makers["torchvision"] = getattr(tvm, name)
    except Exception:
        pass

    def set_tf32(enabled: bool) -> None:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled

    if mode == "train":

        def train(make: Callable[[], torch.nn.Module], amp: torch.dtype | None) -> Build:
            def build() -> Runner:
                set_tf32(False)
                model = make().cuda().train().to(memory_format=torch.channels_last)
                inp = x.contiguous(memory_format=torch.channels_last)
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                labels = torch.randint(0, classes, (batch,), device="cuda")

                def step() -> None:
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast("cuda", dtype=amp or torch.bfloat16, enabled=amp is not None):
                        loss = torch.nn.functional.cross_entropy(model(inp), labels)
                    loss.backward()
                    opt.step()
                    torch.cuda.synchronize()

                return step

            return build

        for impl, make in makers.items():
            yield "train fp32", impl, train(make, None)
            yield "train channels_last bf16", impl, train(make, torch.bfloat16)
        return

    def eager(
        make: Callable[[], torch.nn.Module],
        *,
        tf32: bool = False,
        amp: torch.dtype | None = None,
        channels_last: bool = False,
        compile_mode: str | None = None,
    ) -> Build:
        def build() -> Runner:
            set_tf32(tf32)
            model = make().cuda().eval()
            inp = x
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                inp = x.contiguous(memory_format=torch.channels_last)
            if compile_mode is not None:
                model = torch.compile(model, mode=compile_mode)  # type: ignore[assignment]  # a callable Module

            def run() -> object:
                with (
                    torch.inference_mode(),
                    torch.autocast("cuda", dtype=amp or torch.bfloat16, enabled=amp is not None),
                ):
                    out = model(inp)
                torch.cuda.synchronize()
                return out

            return run

        return build

    for impl, make in makers.items():
        yield "eager fp32", impl, eager(make)
        yield "eager tf32", impl, eager(make, tf32=True)
        yield "channels_last bf16", impl, eager(make, amp=torch.bfloat16, channels_last=True)
        yield "channels_last fp16", impl, eager(make, amp=torch.float16, channels_last=True)
        yield "torch.compile bf16", impl, eager(make, amp=torch.bfloat16, channels_last=True, compile_mode="default")
        yield (
            "torch.compile cudagraphs bf16",
            impl,
            eager(make, amp=torch.bfloat16, channels_last=True, compile_mode="reduce-overhead"),
        )


# ---- keras ----------------------------------------------------------------------------------------------


def keras_paths(
    name: str, batch: int, size: int, mode: str, official: Callable[[], Any] | None
) -> Iterator[tuple[str, str, Build]]:
    """Compiled Keras inference on the GPU: jax.jit of ``stateless_call`` (JAX) or XLA tf.function (TF),
    in fp32 (TF32 off), tf32, and the mixed_bfloat16 policy. ``official`` builds keras.applications'."""
    import keras

    import resnet_keras

    backend = keras.backend.backend()
    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype("float32")
    if mode == "train":
        return

    def compiled(make: Callable[[], Any], policy: str, tf32: bool) -> Build:
        def build() -> Runner:
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(policy)
            try:
                model = make()
            finally:
                keras.config.set_dtype_policy(previous)
            return _jax_runner(model, x, tf32) if backend == "jax" else _tf_runner(model, x, tf32)

        return build

    impls: list[tuple[str, Callable[[], Any]]] = [("ours", lambda: resnet_keras.create_model(name))]
    if official is not None:
        impls.append(("keras.applications", official))
    compiler = "jax.jit" if backend == "jax" else "XLA"
    for impl, make in impls:
        yield f"{compiler} fp32", impl, compiled(make, "float32", tf32=False)
        yield f"{compiler} tf32", impl, compiled(make, "float32", tf32=True)
        yield f"{compiler} mixed bf16", impl, compiled(make, "mixed_bfloat16", tf32=False)


def _jax_runner(model: Any, x: np.ndarray, tf32: bool) -> Runner:
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    inp = jax.device_put(x)
    with jax.default_matmul_precision("default" if tf32 else "highest"):  # "highest": no TF32 in convs/dots
        fn = jax.jit(lambda tv, ntv, t: model.stateless_call(tv, ntv, t, training=False)[0])
        compiled = fn.lower(trainable, non_trainable, inp).compile()
    memory = compiled.memory_analysis()
    peak = 0.0
    if memory is not None:  # what one call holds on the device: arguments, outputs and scratch
        peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes) / 2**20

    def run() -> object:
        return compiled(trainable, non_trainable, inp).block_until_ready()

    run.peak_mb = peak
    return run


def _tf_runner(model: Any, x: np.ndarray, tf32: bool) -> Runner:
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(tf32)
    with tf.device("/GPU:0"):
        inp = tf.constant(x)
    fn = tf.function(lambda t: model(t, training=False), jit_compile=True)

    def run() -> object:
        out = fn(inp)
        return out.numpy()[:1]  # a tiny read-back waits for the whole batch

    return run


# ---- paddle ---------------------------------------------------------------------------------------------


def paddle_paths(
    name: str, batch: int, size: int, mode: str, official: Callable[[], Any] | None
) -> Iterator[tuple[str, str, Build]]:
    """Paddle dygraph (fp32, AMP bf16) and Paddle Inference on the GPU (fp32; TensorRT fp16 where paddle is
    built with it, else the row says so).
    Needs a paddlepaddle-gpu build; NOT RUN by this project's sessions (no paddle on the lent GPU)."""
    import paddle

    import resnet_paddle
    from resnet_paddle.runtime import inference_predictor

    paddle.set_device("gpu")
    paddle.set_flags({"FLAGS_cudnn_allow_tf32": False})
    x = paddle.randn([batch, 3, size, size])
    if mode == "train":
        return

    def dygraph(make: Callable[[], Any], amp: str | None) -> Build:
        def build() -> Runner:
            model = make()
            model.eval()

            def run() -> object:
                with paddle.no_grad(), paddle.amp.auto_cast(enable=amp is not None, dtype=amp or "bfloat16"):  # type: ignore[arg-type]
                    out = model(x)
                paddle.device.synchronize()
                return out

            return run

        return build

    def inference(make: Callable[[], Any], tensorrt: str | None = None) -> Build:
        def build() -> Runner:
            predictor = inference_predictor(make(), 3, device="gpu", tensorrt=tensorrt, max_batch=batch)
            handle = predictor.get_input_handle(predictor.get_input_names()[0])
            handle.reshape([batch, 3, size, size])
            handle.copy_from_cpu(x.numpy())

            def run() -> object:
                predictor.run()
                paddle.device.synchronize()
                return None

            return run

        return build

    impls: list[tuple[str, Callable[[], Any]]] = [("ours", lambda: resnet_paddle.create_model(name))]
    if official is not None:
        impls.append(("paddle.vision", official))
    for impl, make in impls:
        yield "dygraph fp32", impl, dygraph(make, None)
        yield "dygraph bf16", impl, dygraph(make, "bfloat16")
        yield "Paddle Inference fp32", impl, inference(make)
        yield "Paddle Inference TensorRT fp16", impl, inference(make, tensorrt="float16")
