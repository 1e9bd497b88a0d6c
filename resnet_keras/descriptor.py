"""What the tools need to know about this backend, read without importing keras
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from resnet_spec.frameworks import Descriptor, Engine, Rank


def rank_env(r: Rank) -> dict[str, str]:
    """One process per node with its replicas as JAX devices (on the CPU, host devices: GPUs are the devices JAX
    finds, the flag only splits the host); over several nodes, JAX's coordinator at the master address."""
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": f"--xla_force_host_platform_device_count={r.local_replicas}"}
    if r.world > 1:
        env.update(
            RESNET_JAX_COORDINATOR=r.master, RESNET_JAX_PROCESSES=str(r.world), RESNET_JAX_PROCESS_ID=str(r.rank)
        )
    return env


DESCRIPTOR = Descriptor(
    framework="keras",
    package="resnet_keras",
    module="keras",
    distribution="keras",
    import_before=(),
    engine=Engine(
        name="keras.distribution.DataParallel on JAX, one process with N devices",
        batch_norm="BN statistics over the global batch (JAX computes them on the sharded batch)",
        one_process=True,
        global_bn=True,
        cpu_sync_bn=True,
        needs=("jax", "Keras' data-parallel engine here runs on JAX: pip install 'resnet-xf[jax]'"),
        rank_env=rank_env,
        launcher="KERAS_BACKEND=jax python -m resnet_tools.train.parallel JOB.json",
    ),
    exports={
        "onnx": ("onnx", "tf2onnx", "tensorflow", "onnxruntime"),
        "saved-model": ("tensorflow",),
        "tflite": ("tensorflow",),
    },
    artifacts={},  # its three are shared formats (export.formats.SHARED), written by another framework too
    extra="keras",
    model_base="keras.src.models.model.Model",
    reports=("tensorflow-cpu", "tensorflow", "jax", "jaxlib"),
    watches=True,
    runs_on=("tensorflow", "jax", "torch"),
    bench_engines={"cpu": ("torch", "jax"), "gpu": ("tensorflow", "jax")},  # besides TF on CPU; on GPU, both XLAs
    engine_env="KERAS_BACKEND",
    int8={"tflite": ("tflite", ("tensorflow",))},  # post-training INT8 (resnet_keras/int8.py)
    best_paths={
        "cpu train": ("train_on_batch",),
        "cpu serve": ("XLA (jit_compile)",),
        "gpu serve": ("XLA fp32",),
    },  # no GPU training path in resnet bench
)
