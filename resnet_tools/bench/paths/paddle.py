"""paddle's bench paths: dygraph and Paddle Inference, ours and paddle.vision's (CPU and GPU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.bench.paths.common import Build, NoMemory, PathEntry, Runner, train_labels, trainer_step


def _official(name: str) -> Callable[[], Any] | None:
    """paddle.vision's builder of the same name (its ResNets are torchvision's architectures), if it has one."""
    from paddle.vision import models as pvm

    builder: Callable[[], Any] | None = getattr(pvm, name, None)
    return builder


def _paddle_ours(name: str) -> Any:
    import resnet_paddle

    return resnet_paddle.create_model(name)


def _paddle_train(name: str, x: Any) -> Runner:
    import paddle

    model = _paddle_ours(name)
    model.train()
    opt = paddle.optimizer.SGD(learning_rate=0.01, parameters=model.parameters())
    labels = paddle.to_tensor(train_labels(name, x.shape[0]))

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


def _paddle_inference_int8(make: Callable[[], Any], x: np.ndarray, threads: int) -> Runner:
    """Paddle's static PTQ of the model, run by Paddle Inference on oneDNN's int8 kernels: the INT8 row beside the
    float one. Calibrated on the bench's own random input: the ranges do not change the speed."""
    import os
    import tempfile

    from resnet_paddle.int8 import quantize
    from resnet_paddle.runtime import saved_predictor
    from resnet_tools.core.backends import quiet_output

    # quiet: the PTQ's progress bars, oneDNN's graph passes
    with tempfile.TemporaryDirectory(prefix="resnet-bench-paddle-int8-") as tmp, quiet_output():
        quantize(make(), x, "paddle-ptq").save(Path(tmp) / "int8")
        predictor = saved_predictor(os.path.join(tmp, "int8", "model"), threads=threads)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    run: Runner = predictor.run
    return run


def cpu_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import paddle

    from resnet_paddle.runtime import cpu_threads

    paddle.set_device("cpu")
    cpu_threads(threads)  # paddle's dygraph would run on one thread, whatever the other frameworks get
    x_np = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32")
    x = paddle.to_tensor(x_np)
    if mode == "train":
        yield "dygraph", "ours", partial(_paddle_train, name, x)
        yield "Trainer", "ours", partial(trainer_step, "paddle", name, x_np)
        return
    impls: list[tuple[str, Callable[[], Any]]] = [("ours", partial(_paddle_ours, name))]
    if (official := _official(name)) is not None:
        impls.append(("paddle.vision", official))
    for impl, make in impls:
        yield "dygraph", impl, partial(_paddle_dygraph, make, x)
    for impl, make in impls:
        yield "Paddle Inference", impl, partial(_paddle_inference, make, x_np, threads)
    yield "Paddle Inference INT8", "ours", partial(_paddle_inference_int8, impls[0][1], x_np, threads)


def gpu_memory() -> NoMemory:
    return NoMemory()


def gpu_paths(name: str, batch: int, size: int, mode: str) -> Iterator[PathEntry]:
    """The GPU paths, with paddle.vision's model alongside where it has this one."""
    return _gpu_paths(name, batch, size, mode, _official(name))


def _gpu_paths(
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
