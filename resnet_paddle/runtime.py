"""Numpy-in, numpy-out helpers for tooling and tests (PaddlePaddle). Activations are NCHW."""

from __future__ import annotations

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_paddle.weights import native_state
from resnet_spec.naming import to_canonical
from resnet_spec.spec import FEATURE_NAMES


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu"
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked."""
    paddle.set_device("gpu" if device in ("gpu", "cuda") else "cpu")
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(paddle.to_tensor(np.ascontiguousarray(x)))
        out = {"logits": model.forward_head(feats[FEATURE_NAMES[-1]])}
        if features:
            out.update(feats)
    return {k: v.numpy() for k, v in out.items()}


def param_counts(model: ResNet) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) as the framework counts them."""
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    stats = sum(int(np.prod(v.shape)) for k, v in model.state_dict().items() if k.endswith(("_mean", "_variance")))
    return trainable, stats


def native_shapes(model: ResNet) -> dict[str, tuple[int, ...]]:
    """Every native key of the model with its shape."""
    return {k: tuple(v.shape) for k, v in native_state(model).items()}


def gpu_available() -> bool:
    """True when this paddle build is compiled with CUDA and sees a device."""
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def set_tf32(enabled: bool) -> None:
    """paddle 3.x: FLAGS_cudnn_allow_tf32 (default on for Ampere+)."""
    if gpu_available():
        paddle.set_flags({"FLAGS_cudnn_allow_tf32": enabled})


def train_step_numpy(
    model: ResNet, x: np.ndarray, labels: np.ndarray, *, lr: float, device: str = "cpu"
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One SGD step on cross-entropy in train mode (batch statistics; running stats update).

    Returns the train-mode ``logits``, ``loss``, ``input_grad`` (NCHW) and canonical ``grads``.
    """
    paddle.set_device("gpu" if device in ("gpu", "cuda") else "cpu")
    model.train()
    inp = paddle.to_tensor(np.ascontiguousarray(x), stop_gradient=False)
    optimizer = paddle.optimizer.SGD(learning_rate=lr, parameters=model.parameters())
    optimizer.clear_grad()
    logits = model(inp)
    loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels.astype("int64")))
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return {
        "logits": logits.numpy(), "loss": loss.numpy().reshape(1),
        "input_grad": inp.grad.numpy(), "grads": to_canonical(model.spec, "paddle", grads),
    }
