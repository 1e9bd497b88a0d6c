"""Keras' bench paths: eager call, tf.function and XLA, predict, ours and keras.applications' (CPU); jax.jit or XLA
in fp32, TF32 and mixed bf16 (GPU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from resnet_tools.bench.paths.common import Build, NoMemory, PathEntry, Runner, nchw, train_labels, trainer_step

KERAS_OFFICIAL = {
    "resnet50v1": "ResNet50",
    "resnet101v1": "ResNet101",
    "resnet152v1": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}


def _keras_ours(name: str) -> Any:
    import resnet_keras

    return resnet_keras.create_model(name)


def _keras_official(name: str, size: int) -> Any:
    import keras

    app = getattr(keras.applications, KERAS_OFFICIAL[name])
    return app(weights=None, classifier_activation=None, input_shape=(size, size, 3))


def _keras_train(name: str, x: np.ndarray) -> Runner:
    import keras

    model = _keras_ours(name)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    labels = train_labels(name, x.shape[0])
    return lambda: model.train_on_batch(x, labels)


def _keras_eager(make: Callable[[], Any], x: np.ndarray) -> Runner:
    model = make()
    return lambda: model(x, training=False)


def _keras_tf_function(make: Callable[[], Any], x: np.ndarray, xla: bool) -> Runner:
    import tensorflow as tf

    model = make()
    fn = tf.function(lambda t: model(t, training=False), jit_compile=xla)
    inp = tf.constant(x)
    return lambda: fn(inp)


def _keras_predict(make: Callable[[], Any], x: np.ndarray) -> Runner:  # compiled by Keras on every backend
    model = make()
    return lambda: model.predict(x, batch_size=x.shape[0], verbose=0)


def _tflite(make: Callable[[], Any], x: np.ndarray, threads: int, int8: bool) -> Runner:
    """The model as TFLite (float, or full-integer INT8 calibrated on the bench's own random input: the ranges do
    not change the speed) at the bench's batch, run by the TFLite interpreter with ``threads`` threads."""
    import tempfile
    from pathlib import Path

    from resnet_keras.export import export_artifact
    from resnet_keras.int8 import full_integer
    from resnet_tools.core.backends import quiet_output
    from resnet_tools.export.runtimes import tflite_runner

    model = make()
    with tempfile.TemporaryDirectory(prefix="resnet-bench-tflite-") as tmp:
        path = Path(tmp) / "model.tflite"
        with quiet_output():  # the converter's MLIR notes
            if int8:
                path.write_bytes(full_integer(model, x, tuple(x.shape[1:]), batch=x.shape[0]))
            else:
                export_artifact(model, "tflite", path, input_shape=(x.shape[0], x.shape[3], x.shape[1], x.shape[2]))
        run = tflite_runner(path, threads=threads)
    inp = x.transpose(0, 3, 1, 2)  # the runner takes NCHW and gives the file its layout
    return lambda: run(inp)


def cpu_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    import keras

    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype("float32")
    if mode == "train":
        yield "train_on_batch", "ours", partial(_keras_train, name, x)
        yield "Trainer", "ours", partial(trainer_step, "keras", name, nchw(batch, size))
        return
    impls: list[tuple[str, Callable[[], Any]]] = [("ours", partial(_keras_ours, name))]
    if name in KERAS_OFFICIAL:
        impls.append(("keras.applications", partial(_keras_official, name, size)))
    for impl, make in impls:
        yield "eager call", impl, partial(_keras_eager, make, x)
        if keras.backend.backend() == "tensorflow":
            yield "tf.function", impl, partial(_keras_tf_function, make, x, False)
            yield "XLA (jit_compile)", impl, partial(_keras_tf_function, make, x, True)
        yield "predict", impl, partial(_keras_predict, make, x)
    if keras.backend.backend() == "tensorflow":
        yield "TFLite", "ours", partial(_tflite, impls[0][1], x, threads, False)
        yield "TFLite INT8", "ours", partial(_tflite, impls[0][1], x, threads, True)


def gpu_memory() -> NoMemory:
    return NoMemory()  # JAX rows carry their own peak


def gpu_paths(name: str, batch: int, size: int, mode: str) -> Iterator[PathEntry]:
    """The GPU paths, with keras.applications' model alongside where it has this one."""
    import keras

    def keras_official() -> keras.Model:
        app = getattr(keras.applications, KERAS_OFFICIAL[name])
        return app(weights=None, classifier_activation=None, input_shape=(size, size, 3))

    return _gpu_paths(name, batch, size, mode, keras_official if name in KERAS_OFFICIAL else None)


def _gpu_paths(
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
