"""Numpy-in, numpy-out helpers for tooling and tests (PaddlePaddle). Activations are NCHW."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_paddle.weights import native_state
from resnet_spec.model_spec import FEATURE_NAMES
from resnet_spec.naming import to_canonical
from resnet_spec.plan import feature_names
from resnet_spec.spec import check_amp


def paddle_device(device: str) -> str:
    """The project's device names ("cpu", "gpu") as paddle's ("cpu", "gpu")."""
    return "gpu" if device in ("gpu", "cuda") else device


def cpu_threads(n: int | None = None) -> int:
    """Let paddle's dygraph CPU kernels use ``n`` threads (default: $OMP_NUM_THREADS, else every core this
    process may run on). paddle uses one unless told; torch and TensorFlow take every core by default."""
    n = n or int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    paddle.base.core.set_num_threads(n)
    return n


# --8<-- [start:amp]
def autocast(amp: str | None) -> paddle.amp.auto_cast:
    """paddle's mixed precision (AMP level O1): convs and matmuls in ``amp`` (bfloat16/float16), BN in
    float32; parameters stay float32. ``None``: disabled."""
    return paddle.amp.auto_cast(enable=amp is not None, level="O1", dtype=check_amp(amp) or "bfloat16")


# --8<-- [end:amp]


def _to_numpy(t: paddle.Tensor) -> np.ndarray:
    """numpy has no bfloat16: low-precision outputs come back as float32 (exactly representable)."""
    return (t.astype("float32") if t.dtype in (paddle.bfloat16, paddle.float16) else t).numpy()


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu", amp: str | None = None
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked.

    ``amp`` ("bfloat16" / "float16") runs it under ``paddle.amp.auto_cast`` (mixed precision).
    """
    paddle.set_device(paddle_device(device))
    model.eval()
    with paddle.no_grad(), autocast(amp):
        feats = model.forward_features(paddle.to_tensor(np.ascontiguousarray(x)))
        out = {"logits": model.forward_head(feats[feature_names(model.spec)[-1]])}
        if features:
            out.update(feats)
    return {k: _to_numpy(v) for k, v in out.items()}


def forward_blocks(model: ResNet, x: np.ndarray, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: the stem, every residual block's output (``layer1.0`` ...) and the
    logits, in forward order (forward post-hooks on the blocks)."""
    paddle.set_device(paddle_device(device))
    model.eval()
    out: dict[str, paddle.Tensor] = {}
    hooks = []
    for s, stage in enumerate(model.stages()):
        for i, block in enumerate(stage):
            hooks.append(
                block.register_forward_post_hook(lambda _m, _i, y, n=f"layer{s + 1}.{i}": out.__setitem__(n, y))
            )
    try:
        with paddle.no_grad():
            feats = model.forward_features(paddle.to_tensor(np.ascontiguousarray(x)))
            logits = model.forward_head(feats[feature_names(model.spec)[-1]])
    finally:
        for h in hooks:
            h.remove()
    ordered = {FEATURE_NAMES[0]: feats[FEATURE_NAMES[0]], **out, "logits": logits}
    return {k: _to_numpy(v) for k, v in ordered.items()}


def inference_predictor(
    layer: paddle.nn.Layer,
    in_channels: int,
    *,
    threads: int | None = None,
    device: str = "cpu",
    tensorrt: str | None = None,
    max_batch: int = 1,
) -> paddle.inference.Predictor:
    """``paddle.jit.save`` + a Paddle Inference predictor (oneDNN on CPU) for NCHW input of any size.

    ``tensorrt`` ("float32" / "float16") hands the GPU graph to TensorRT, where paddle is built with it.
    The exported graph lives in a temporary folder removed once the predictor has loaded it.
    """
    if tensorrt is not None and inference_tensorrt_version() is None:
        raise RuntimeError("this paddle build has no TensorRT (paddle.inference.get_trt_compile_version() is 0)")
    from paddle.static import InputSpec

    layer.eval()
    with tempfile.TemporaryDirectory(prefix="resnet_paddle_") as folder:
        prefix = os.path.join(folder, "model")
        paddle.jit.save(layer, prefix, input_spec=[InputSpec([None, in_channels, None, None], "float32", "x")])
        return saved_predictor(prefix, threads=threads, device=device, tensorrt=tensorrt, max_batch=max_batch)


def saved_predictor(
    prefix: str, *, threads: int | None = None, device: str = "cpu", tensorrt: str | None = None, max_batch: int = 1
) -> paddle.inference.Predictor:
    """A Paddle Inference predictor on the files ``paddle.jit.save`` wrote at ``prefix`` (PIR ``.json`` or
    legacy ``.pdmodel``, and ``.pdiparams``)."""
    from paddle import inference

    graph = next(p for p in (prefix + ".json", prefix + ".pdmodel") if os.path.exists(p))  # PIR or legacy
    config = inference.Config(graph, prefix + ".pdiparams")
    if device in ("gpu", "cuda"):
        config.enable_use_gpu(256, 0)
        if tensorrt is not None:
            precision = {"float32": inference.PrecisionType.Float32, "float16": inference.PrecisionType.Half}
            config.enable_tensorrt_engine(
                max_batch_size=max_batch, precision_mode=precision[tensorrt], use_calib_mode=False
            )
    else:
        config.disable_gpu()
        config.enable_mkldnn()  # oneDNN kernels with conv+BN(+ReLU) fusion passes
        if _quantized(graph):
            # a graph of paddle's static PTQ (quantize_linear/dequantize_linear pairs): oneDNN's int8 kernels run it.
            # Without this, Paddle Inference runs the pairs in float: the INT8 numbers, 10x slower (measured)
            config.enable_mkldnn_int8()
        config.set_cpu_math_library_num_threads(threads or len(os.sched_getaffinity(0)))
    config.disable_glog_info()
    return inference.create_predictor(config)


def _quantized(graph: str) -> bool:
    """Whether a saved graph holds quantize ops (the op names are plain strings in the protobuf)."""
    with open(graph, "rb") as fh:
        return b"quantize_linear" in fh.read()


def inference_tensorrt_version() -> tuple[int, ...] | None:
    """The TensorRT version this paddle build was compiled against, or None without TensorRT."""
    version = tuple(paddle.inference.get_trt_compile_version())
    return version if any(version) else None


class _AllOutputs(paddle.nn.Layer):
    """Exports a model as one graph returning the stem/stage outputs and the logits, in DEPTH order."""

    def __init__(self, model: ResNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> list[paddle.Tensor]:
        feats = self.model.forward_features(x)
        names = feature_names(self.model.spec)
        return [feats[k] for k in names] + [self.model.forward_head(feats[names[-1]])]


# --8<-- [start:fast]
def fast_forward(
    model: ResNet, *, features: bool = False, device: str = "cpu"
) -> tuple[str, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """The fast eval path as (name, run): Paddle Inference on a ``paddle.jit.save`` export of the model.

    The predictor holds a copy of the weights taken now. Paddle Inference runs float32 only: other
    dtypes get dygraph. ``run`` takes NCHW numpy and returns what :func:`forward_numpy` returns.
    """
    if model.parameters()[0].dtype != paddle.float32:
        return "dygraph (Paddle Inference is float32 only)", lambda x: forward_numpy(
            model, x, features=features, device=device
        )
    predictor = inference_predictor(_AllOutputs(model) if features else model, model.spec.in_channels, device=device)
    names = [*feature_names(model.spec), "logits"] if features else ["logits"]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(np.ascontiguousarray(x))
        predictor.run()
        outs = [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]
        return dict(zip(names, outs, strict=True))

    return "paddle.jit.save + Paddle Inference" + ("" if device in ("gpu", "cuda") else " (oneDNN)"), run


# --8<-- [end:fast]


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


def amp_supported(device: str) -> bool:
    """Whether ``forward_numpy(amp=...)`` runs mixed precision on ``device``: ``paddle.amp.auto_cast``
    works on CUDA only (on CPU it warns "makes no effect" and runs float32; measured with 3.3.1)."""
    return device in ("gpu", "cuda") and gpu_available()


def release_caches() -> None:
    """Free what the framework keeps between models in a long run: paddle's dygraph keeps none on the CPU
    (CUDA's cached blocks go back where there is one)."""
    if paddle.device.is_compiled_with_cuda():
        paddle.device.cuda.empty_cache()


def use_all_cores() -> None:
    """Every core for long CPU runs (training, evaluation): paddle's dygraph alone defaults to one thread
    (a resnet18 step on 2 cores: 4.0 s on one thread, 3.3 s on two; measured)."""
    cpu_threads()


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
    paddle.set_device(paddle_device(device))
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
        "logits": logits.numpy(),
        "loss": loss.numpy().reshape(1),
        "input_grad": inp.grad.numpy(),
        "grads": to_canonical(model.spec, "paddle", grads),
    }
