"""The one table of parity tolerances, with the reason for each entry. No per-model overrides.

The figure is ``max |target - reference| / max |reference|`` over a tensor (logits, stem, each
stage output, gradients); a tensor passes when it is at or below the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec.errors import ResNetError


@dataclass(frozen=True)
class Tolerance:
    rel: float
    why: str


TOLERANCES: dict[tuple[str, str, str], Tolerance] = {
    # Measured by bench/measure_tolerances.py (docs/generated/tolerances-cpu.json, gpu/tolerances-gpu.json): the
    # worst figure over models x seeds x batch/input sizes x pairs x comparison points); each bound sits a few times
    # above the worst measured figure, and a test checks that it does.
    ("float32", "cpu", "eval"): Tolerance(
        1e-5, "fp32 sums in different orders (oneDNN / Eigen / MKL kernels); measured <= 2.0e-6 (3 backends)"
    ),
    ("float32", "cpu", "train"): Tolerance(
        1e-4,
        "batch statistics add reductions over N*H*W; measured <= 4.4e-5 for the forward, loss and running "
        "stats. fp32 gradients of deep random-weight nets are chaotic at ~3e-2 in EVERY pair (ReLU masks flip where "
        "|pre-activation| ~ 1e-7, train-mode BN spreads each flip over its channel): use float64 for gradients",
    ),
    ("float64", "cpu", "eval"): Tolerance(1e-11, "fp64 rounding only; measured <= 1.9e-12"),
    ("float64", "cpu", "train"): Tolerance(
        1e-6,
        "gradients agree to <= 3e-8; paddle keeps BN momentum in float32 (0.9 -> 0.89999998), which moves "
        "its running statistics by up to 2.3e-7 relative (torch vs keras alone: ~1e-13). Convention bugs are >= 1e-2",
    ),
    ("float64", "cpu", "steps"): Tolerance(
        1e-9,
        "many-step training (losses, weights, optimizer state) with each framework's own optimizer, with "
        "hyperparameters exact in float32 (paddle passes them to its kernels as float32 attributes) and no "
        "running statistics compared (paddle's BN momentum is float32 too; see float64/cpu/train)",
    ),
    ("float32", "gpu", "eval"): Tolerance(
        1e-5,
        "TF32 switched OFF (it moves logits ~1e-3); cuDNN/XLA pick their own algorithms: measured <= 1.3e-6 "
        "(torch CUDA vs Keras on JAX, H100); paddle GPU not measured",
    ),
    ("float32", "gpu", "train"): Tolerance(
        1e-4,
        "as on CPU (non-deterministic cuDNN backward on top); measured <= 2.9e-6 forward/loss/stats and "
        "7e-6 gradients on resnet18 (torch vs Keras-JAX, H100); deep nets' fp32 gradients are chaotic as on CPU",
    ),
    ("float64", "gpu", "eval"): Tolerance(
        1e-11, "as on CPU; measured <= 2.3e-15 (torch vs Keras-JAX, H100: cuDNN fp64 is exact-ish)"
    ),
    ("float64", "gpu", "train"): Tolerance(
        1e-6, "as on CPU, for paddle's float32 BN momentum (2.3e-7 on CPU); torch vs Keras-JAX measured 9.8e-15 (H100)"
    ),
    ("float32", "cpu", "export"): Tolerance(
        1e-5,
        "an exported artifact in its runtime (onnxruntime, Paddle Inference, TF SavedModel, TFLite) against its "
        "source framework's eager forward: fp32 sums in the runtimes' own orders and fusions (conv+BN folded); "
        "measured <= 2.0e-6 (resnet18/50/50v2/resnext50, three input shapes; the exporter defects in "
        "docs/export.md excluded)",
    ),
    ("bfloat16", "cpu", "eval"): Tolerance(
        5e-2,
        "8-bit mantissa: each conv input rounds at 2^-9 relative, and BN/ReLU/add run at different precisions "
        "per framework (autocast vs Keras mixed policy); measured <= 1.8e-2 (own float32 and cross, torch + keras)",
    ),
    ("float16", "cpu", "eval"): Tolerance(
        5e-3, "11-bit mantissa; measured <= 2.1e-3 (own float32 and cross, torch + keras)"
    ),
    ("bfloat16", "gpu", "eval"): Tolerance(5e-2, "as on CPU; measured <= 1.5e-2 (torch autocast vs Keras-JAX, H100)"),
    ("float16", "gpu", "eval"): Tolerance(5e-3, "as on CPU; measured <= 2.1e-3 (torch autocast vs Keras-JAX, H100)"),
}

#: The loosest bar any fp32 test may use (the issue's ceiling).
TEST_CEILING = 1e-4


def tolerance(dtype: str, device: str, mode: str) -> Tolerance:
    """Look up the tolerance; unknown combinations are an error, never a silent default."""
    try:
        return TOLERANCES[(dtype, device, mode)]
    except KeyError:
        known = ", ".join("/".join(k) for k in TOLERANCES)
        raise ResNetError(f"no tolerance for dtype={dtype} device={device} mode={mode}; known: {known}") from None
