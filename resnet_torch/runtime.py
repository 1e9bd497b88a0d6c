"""Numpy-in, numpy-out helpers for tooling and tests (PyTorch). Activations are NCHW."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from resnet_spec.model_spec import FEATURE_NAMES
from resnet_spec.naming import to_canonical
from resnet_spec.plan import feature_names
from resnet_spec.spec import check_amp
from resnet_torch.model import ResNet
from resnet_torch.weights import native_state


def torch_device(device: str) -> str:
    """The project's device names ("cpu", "gpu") as torch's ("cpu", "cuda")."""
    return "cuda" if device in ("gpu", "cuda") else device


# --8<-- [start:amp]
def autocast(device: str, amp: str | None) -> torch.autocast:
    """torch's mixed precision: convs and matmuls in ``amp`` (bfloat16/float16), BN and the rest as
    autocast decides (BN keeps float32 statistics); parameters stay float32. ``None``: disabled."""
    return torch.autocast(
        torch_device(device), dtype=getattr(torch, check_amp(amp) or "bfloat16"), enabled=amp is not None
    )


# --8<-- [end:amp]


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """numpy has no bfloat16: low-precision outputs come back as float32 (exactly representable)."""
    t = t.detach()
    return (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).cpu().numpy()


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu", amp: str | None = None
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked.

    ``amp`` ("bfloat16" / "float16") runs it under autocast (mixed precision).
    """
    device = torch_device(device)
    model.eval().to(device)
    with torch.no_grad(), autocast(device, amp):
        feats = model.forward_features(torch.from_numpy(np.ascontiguousarray(x)).to(device))
        out = {"logits": model.forward_head(feats[feature_names(model.spec)[-1]])}
        if features:
            out.update(feats)
    return {k: _to_numpy(v) for k, v in out.items()}


def forward_blocks(model: ResNet, x: np.ndarray, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: the stem, every residual block's output (``layer1.0`` ...) and the
    logits, in forward order (forward hooks on the blocks)."""
    device = torch_device(device)
    model.eval().to(device)
    out: dict[str, torch.Tensor] = {}
    hooks = []
    for s, stage in enumerate(model.stages()):
        for i, block in enumerate(stage):
            hooks.append(block.register_forward_hook(lambda _m, _i, y, n=f"layer{s + 1}.{i}": out.__setitem__(n, y)))
    try:
        with torch.no_grad():
            feats = model.forward_features(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            logits = model.forward_head(feats[feature_names(model.spec)[-1]])
    finally:
        for h in hooks:
            h.remove()
    ordered = {FEATURE_NAMES[0]: feats[FEATURE_NAMES[0]], **out, "logits": logits}
    return {k: _to_numpy(v) for k, v in ordered.items()}


# --8<-- [start:fast]
def fast_forward(
    model: ResNet, *, features: bool = False, device: str = "cpu"
) -> tuple[str, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """The fast eval path as (name, run): channels_last memory format under ``inference_mode``.

    oneDNN/cuDNN pick NHWC conv kernels (the model is converted in place: same parameters, another
    memory layout). torch.compile is faster at batch 16 but costs 20-60 s to compile on 2 cores.
    ``run`` takes NCHW numpy and returns what :func:`forward_numpy` returns.
    """
    device = torch_device(device)
    model.eval().to(device, memory_format=torch.channels_last)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        inp = torch.from_numpy(np.ascontiguousarray(x)).to(device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            feats = model.forward_features(inp)
            out = {"logits": model.forward_head(feats[feature_names(model.spec)[-1]])}
            if features:
                out.update(feats)
        return {k: np.ascontiguousarray(v.cpu().numpy()) for k, v in out.items()}

    return "channels_last + inference_mode", run


# --8<-- [end:fast]


def param_counts(model: ResNet) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) as the framework counts them."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for k, b in model.named_buffers() if k.endswith(("running_mean", "running_var")))
    return trainable, stats


def native_shapes(model: ResNet) -> dict[str, tuple[int, ...]]:
    """Every native key of the model with its shape."""
    return {k: tuple(v.shape) for k, v in native_state(model).items()}


def gpu_available() -> bool:
    """True when this torch build sees a CUDA device."""
    return torch.cuda.is_available()


def amp_supported(device: str) -> bool:
    """Whether ``forward_numpy(amp=...)`` runs mixed precision on ``device``: torch autocasts on CPU
    (bfloat16 and float16 via oneDNN) and on CUDA."""
    return device == "cpu" or (device in ("gpu", "cuda") and gpu_available())


def release_caches() -> None:
    """Free what the framework keeps between models in a long run: torch keeps compiled graphs only for
    ``torch.compile``, which this backend's paths do not use (CUDA's cached blocks go back where there is one)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def use_all_cores() -> None:
    """Every core for long CPU runs: torch takes them by default (nothing to do)."""


# --8<-- [start:tf32]
def set_tf32(enabled: bool) -> None:
    """TF32 matmuls/convs on Ampere+ (torch's cuDNN default is ON; it moves logits by ~1e-3 relative)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


# --8<-- [end:tf32]


def train_step_numpy(
    model: ResNet, x: np.ndarray, labels: np.ndarray, *, lr: float, device: str = "cpu"
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One SGD step on cross-entropy in train mode (batch statistics; running stats update).

    Returns the train-mode ``logits``, ``loss``, ``input_grad`` (NCHW) and canonical ``grads``.
    """
    device = torch_device(device)
    model.train().to(device)
    inp = torch.from_numpy(np.ascontiguousarray(x)).to(device).requires_grad_(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad()
    logits = model(inp)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels).long().to(device))
    loss.backward()
    grads = {k: p.grad.detach().cpu().numpy() for k, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return {
        "logits": logits.detach().cpu().numpy(),
        "loss": loss.detach().cpu().numpy().reshape(1),
        "input_grad": inp.grad.detach().cpu().numpy(),
        "grads": to_canonical(model.spec, "torch", grads),
    }
