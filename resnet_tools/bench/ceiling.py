"""The CPU's FP32 ceiling, measured in the run that reports against it: register-only FMA throughput (a small C
probe, AVX-512 or AVX2, compiled for this machine with gcc), with SGEMM rates beside it. "% of peak" on CPU is
against the FMA ceiling, which no program can pass; SGEMM (numpy's OpenBLAS: ~45-55% of it here) was the old
reference and made good paths read over 100%."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: A register-only throughput probe: 12 independent chains of one instruction per iteration (enough to cover its
#: latency on 2 ports), ``OPS`` operations per lane each, on every OMP thread; prints the best rate of 5 runs in
#: G operations/s. ``{isa}`` picks the instruction (``OP``) and the register width (``LANES`` 32-bit lanes).
PROBE = r"""
#include <omp.h>
#include <stdio.h>
#include <time.h>
{isa}
static double now(void) {{ struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }}
int main(void) {{
    const long iters = 20000000L;
    double best = 0.0;
    for (int rep = 0; rep < 5; rep++) {{
        double t0 = now();
#pragma omp parallel
        for (long i = 0; i < iters; i++) {{
            __asm__ volatile(OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
                             ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                             "xmm10", "xmm11");
        }}
        double rate = (double)iters * omp_get_max_threads() * 12 * LANES * OPS / (now() - t0);
        if (rate > best) best = rate;
    }}
    printf("%.1f\n", best / 1e9);
    return 0;
}}
"""
#: FP32 FMA: zmm (16 floats) with AVX-512, else ymm (8 floats); 2 flops (mul + add) per lane.
FMA_PROBE = PROBE.format(
    isa=r"""#define OPS 2
#if defined(__AVX512F__)
#define LANES 16
#define OP(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
#elif defined(__AVX2__) && defined(__FMA__)
#define LANES 8
#define OP(r) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #r "\n\t"
#else
#error "no AVX2 FMA on this CPU"
#endif"""
)
#: The INT8 ceiling: ``vpdpbusd`` (AVX512-VNNI on zmm, else AVX-VNNI on ymm) multiplies 4 u8 x s8 pairs into every
#: int32 lane and adds them, 8 int ops per lane. What oneDNN's, ONNX Runtime's and XNNPACK's int8 convolutions run
#: on where the CPU has it.
VNNI_PROBE = PROBE.format(
    isa=r"""#define OPS 8
#if defined(__AVX512VNNI__)
#define LANES 16
#define OP(r) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #r "\n\t"
#elif defined(__AVXVNNI__)
#define LANES 8
#define OP(r) "{vex} vpdpbusd %%ymm14, %%ymm15, %%ymm" #r "\n\t"
#else
#error "no VNNI on this CPU"
#endif"""
)


def fma_ceiling(threads: int) -> float | None:
    """GFLOP/s of the FMA probe on ``threads`` threads; None where it cannot run (no gcc, no AVX2 FMA, not x86)."""
    return _probe(FMA_PROBE, threads)


def vnni_ceiling(threads: int) -> float | None:
    """INT8 GOP/s of the VNNI probe on ``threads`` threads; None where it cannot run (no gcc, no VNNI)."""
    return _probe(VNNI_PROBE, threads)


def _probe(code: str, threads: int) -> float | None:
    """Compile ``code`` for this machine and run it on ``threads`` threads: the rate it prints, or None."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="resnet-fma-") as tmp:
        source, exe = Path(tmp) / "fma_peak.c", Path(tmp) / "fma_peak"
        source.write_text(code)
        built = subprocess.run(
            [gcc, "-O2", "-fopenmp", "-march=native", str(source), "-o", str(exe)], capture_output=True, check=False
        )
        if built.returncode != 0:
            return None
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        ran = subprocess.run([str(exe)], env=env, capture_output=True, text=True, check=False, timeout=120)
        try:
            return float(ran.stdout) if ran.returncode == 0 else None
        except ValueError:
            return None


def _best(fn: Callable[[], object], tries: int) -> float:
    fn()
    times = []
    for _ in range(tries):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sgemm_rate(n: int = 2048, tries: int = 7) -> float:
    """GFLOP/s of numpy's float32 n x n matmul (its BLAS, the thread count already set), best of ``tries``."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
    b = np.random.default_rng(1).standard_normal((n, n)).astype("float32")
    return 2 * n**3 / _best(lambda: a @ b, tries) / 1e9


def cpu_ceiling(threads: int) -> dict[str, Any]:
    """``peak_gflops`` (the FMA ceiling; numpy's SGEMM only where the probe cannot run, then said so in
    ``peak_method``) and ``sgemm_gflops`` beside it; ``peaks`` with the INT8 (VNNI) ceiling where it runs."""
    sgemm = sgemm_rate()
    fma = fma_ceiling(threads)
    if fma is None or fma < sgemm:  # a probe slower than a matmul measured nothing: never a ceiling below a rate
        return {"peak_gflops": sgemm, "sgemm_gflops": sgemm, "peak_method": "numpy float32 2048^3 SGEMM, best of 7 "
                "(the FMA probe could not run here: no gcc or no AVX2 FMA)"}  # fmt: skip
    vnni = vnni_ceiling(threads)  # the INT8 rows' ceiling, where the CPU has VNNI
    return {"peak_gflops": fma, "sgemm_gflops": sgemm, "peak_method": "register-only FP32 FMA throughput "
            f"(resnet_tools/bench/ceiling.py, {threads} threads); numpy SGEMM 2048^3 beside it",
            **({"peaks": {"fp32": fma, "int8": vnni}} if vnni else {})}  # fmt: skip
