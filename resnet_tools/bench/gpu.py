"""GPU execution paths of ``resnet bench --device gpu`` (run inside ``resnet_tools.bench.worker``).

Every runner ends with a device synchronisation, so a timed call is the whole batch on the GPU. The
input lives on the device (no host copies in the timed region). cuDNN autotuning is on
(``cudnn.benchmark``) for torch; TF32 is OFF except on the paths named "tf32". The precision of a
path ("fp32", "tf32", "bf16", "fp16") selects the dense peak its throughput is compared with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Runner = Callable[[], object]
Build = Callable[[], Runner]
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "int8")


def path_precision(path: str) -> str:
    """The math precision a path name states ("... bf16", "... tf32", "... INT8"); plain paths are fp32."""
    return next((p for p in PRECISIONS[1:] if p in path.lower().split()), "fp32")


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


# ---- keras ----------------------------------------------------------------------------------------------
