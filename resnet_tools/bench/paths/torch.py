"""torch's bench paths: eager NCHW and channels_last, torch.compile, ONNX Runtime, torchvision or its stand-in
(CPU); cuDNN paths in fp32, TF32, bf16 and fp16, CUDA graphs and compiled ones (GPU)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import get_spec
from resnet_tools.bench.paths.common import Build, PathEntry, Runner, nchw, train_labels, trainer_step


def _torch_ours(name: str) -> Any:
    import resnet_torch

    return resnet_torch.create_model(name).eval()


def _torch_train(name: str, x: Any) -> Runner:
    import torch

    model = _torch_ours(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    labels = torch.from_numpy(train_labels(name, x.shape[0]))

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


def _onnxruntime_int8(make: Callable[[], Any], x: Any, threads: int) -> Runner:
    """The same ONNX quantized by ONNX Runtime (QDQ, weights per channel) and run by onnxruntime: the INT8 row
    beside the float one. Calibrated on the bench's own random input: the ranges do not change the speed."""
    import tempfile

    import resnet_torch.export
    from resnet_tools.core.backends import quiet_output
    from resnet_tools.export.int8.onnxruntime import quantize
    from resnet_tools.export.runtimes import onnx_runner

    inp = x.numpy()
    with tempfile.TemporaryDirectory(prefix="resnet-bench-onnx-int8-") as tmp:
        with quiet_output():
            resnet_torch.export.export_artifact(make(), "onnx", f"{tmp}/model.onnx", input_shape=tuple(inp.shape))
            quantize(Path(f"{tmp}/model.onnx"), Path(f"{tmp}/int8.onnx"), inp)
        run = onnx_runner(f"{tmp}/int8.onnx", threads=threads)
    return lambda: run(inp)


#: The torch comparator where torchvision is missing: transformers' ResNet, v1.5 like torchvision's, computing
#: our logits from our weights (parity_tests/checkpoints/test_zoo_compat.py); labelled as the stand-in it is.
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


def cpu_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import torch

    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, size, size)
    if mode == "train":
        yield "eager", "ours", partial(_torch_train, name, x)
        yield "Trainer", "ours", partial(trainer_step, "torch", name, nchw(batch, size))
        return
    ours = partial(_torch_ours, name)
    yield "eager NCHW", "ours", partial(_torch_eager, ours, x)
    yield "channels_last", "ours", partial(_torch_eager, ours, x, True)
    yield "torch.compile", "ours", partial(_torch_compiled, ours, x)
    if all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnxscript")):
        yield "ONNX Runtime", "ours", partial(_onnxruntime, ours, x, threads)
        yield "ONNX Runtime INT8", "ours", partial(_onnxruntime_int8, ours, x, threads)
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


def gpu_memory() -> TorchMemory:
    """torch's allocator counter: the peak GPU memory of a path."""
    return TorchMemory()


def gpu_paths(name: str, batch: int, size: int, mode: str) -> Iterator[PathEntry]:
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

    if mode == "train":

        def train(make: Callable[[], torch.nn.Module], amp: torch.dtype | None) -> Build:
            def build() -> Runner:
                resnet_torch.set_tf32(False)
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
            resnet_torch.set_tf32(tf32)
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
    # toward 30k img/s on Hopper (issue 31): the one-off column holds each path's compile or engine-build time.
    # Cheapest build first: max-autotune tunes for minutes (over 5 on an H100), so a time limit cuts it, not the rest.
    yield "compile freezing cudagraphs bf16", "ours", _frozen(makers["ours"], x, "reduce-overhead")
    if importlib.util.find_spec("onnxruntime") is not None:
        yield "ONNX Runtime CUDA fp32", "ours", _ort_gpu(makers["ours"], x, "CUDAExecutionProvider")
        yield "ONNX Runtime TensorRT fp16", "ours", _ort_gpu(makers["ours"], x, "TensorrtExecutionProvider")
    yield "compile freezing max-autotune bf16", "ours", _frozen(makers["ours"], x, "max-autotune")


def _frozen(make: Callable[[], Any], x: Any, mode: str) -> Build:
    """torch.compile with freezing (weights constant, BN folded into the convs), bf16 weights and input,
    channels_last, TF32 off; ``mode`` "reduce-overhead" (CUDA graphs, cuDNN convs) or "max-autotune" (Triton and
    cuBLAS/cuDNN kernels timed per shape, then CUDA graphs)."""

    def build() -> Runner:
        import torch
        import torch._inductor.config as inductor

        import resnet_torch

        resnet_torch.set_tf32(False)
        model = make().cuda().eval().to(dtype=torch.bfloat16, memory_format=torch.channels_last)
        inp = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        compiled = torch.compile(model, mode=mode)

        def run() -> object:
            with inductor.patch(freezing=True), torch.inference_mode():  # freezing applies when it compiles
                out = compiled(inp)
            torch.cuda.synchronize()
            return out

        return run

    return build


def _ort_gpu(make: Callable[[], Any], x: Any, provider: str) -> Build:
    """torch's ONNX export run by onnxruntime's CUDA or TensorRT provider (TensorRT: fp16 engine), the input and
    the output bound on the device (no host copies in the timed call); the export and the engine build are the
    one-off cost. A build of onnxruntime without the provider is the row's error."""

    def build() -> Runner:
        import tempfile

        import onnxruntime as ort
        import torch

        import resnet_torch.export
        from resnet_tools.core.backends import quiet_output

        if provider not in ort.get_available_providers():
            raise RuntimeError(f"this onnxruntime has no {provider} (onnxruntime-gpu builds do)")
        with tempfile.TemporaryDirectory(prefix="resnet-bench-ort-") as tmp:
            path = f"{tmp}/model.onnx"
            with quiet_output():
                resnet_torch.export.export_artifact(make().eval(), "onnx", path, input_shape=tuple(x.shape))
            cuda = {"use_tf32": 0}  # ORT's CUDA provider runs fp32 convs in TF32 by default: this row is fp32
            options = {"trt_fp16_enable": True} if provider.startswith("Tensorrt") else cuda
            session = ort.InferenceSession(path, providers=[(provider, options), ("CUDAExecutionProvider", cuda)])
        inp = x.float().contiguous()
        binding = session.io_binding()
        binding.bind_input(session.get_inputs()[0].name, "cuda", 0, np.float32, tuple(inp.shape), inp.data_ptr())
        binding.bind_output(session.get_outputs()[0].name, "cuda")

        def run() -> object:
            session.run_with_iobinding(binding)
            torch.cuda.synchronize()
            return None

        return run

    return build
