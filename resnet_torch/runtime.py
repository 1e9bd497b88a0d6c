"""Numpy-in, numpy-out helpers for tooling and tests (PyTorch). Activations are NCHW."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from resnet_spec.naming import to_canonical
from resnet_spec.spec import FEATURE_NAMES
from resnet_torch.model import ResNet
from resnet_torch.weights import native_state


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu"
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked."""
    device = "cuda" if device == "gpu" else device
    model.eval().to(device)
    with torch.no_grad():
        feats = model.forward_features(torch.from_numpy(np.ascontiguousarray(x)).to(device))
        out = {"logits": model.forward_head(feats[FEATURE_NAMES[-1]])}
        if features:
            out.update(feats)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


# --8<-- [start:fast]
def fast_forward(
    model: ResNet, *, features: bool = False, device: str = "cpu"
) -> tuple[str, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """The fast eval path as (name, run): channels_last memory format under ``inference_mode``.

    oneDNN/cuDNN pick NHWC conv kernels (the model is converted in place: same parameters, another
    memory layout). torch.compile is faster at batch 16 but costs 20-60 s to compile on 2 cores.
    ``run`` takes NCHW numpy and returns what :func:`forward_numpy` returns.
    """
    device = "cuda" if device == "gpu" else device
    model.eval().to(device, memory_format=torch.channels_last)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        inp = torch.from_numpy(np.ascontiguousarray(x)).to(device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            feats = model.forward_features(inp)
            out = {"logits": model.forward_head(feats[FEATURE_NAMES[-1]])}
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
    device = "cuda" if device == "gpu" else device
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
        "logits": logits.detach().cpu().numpy(), "loss": loss.detach().cpu().numpy().reshape(1),
        "input_grad": inp.grad.detach().cpu().numpy(), "grads": to_canonical(model.spec, "torch", grads),
    }
