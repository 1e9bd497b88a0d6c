"""What the tools need to know about this backend, read without importing flax
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from resnet_spec.frameworks import ArtifactKind, Descriptor, Engine, Rank


def rank_env(r: Rank) -> dict[str, str]:
    """One process per node with its replicas as JAX devices (on the CPU, host devices: the flag splits the host)."""
    env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={r.local_replicas}"}
    if r.world > 1:  # over several nodes, JAX's coordinator at the master address
        env.update(
            RESNET_JAX_COORDINATOR=r.master, RESNET_JAX_PROCESSES=str(r.world), RESNET_JAX_PROCESS_ID=str(r.rank)
        )
    return env


DESCRIPTOR = Descriptor(
    framework="flax",
    package="resnet_flax",
    module="flax",
    distribution="flax",
    import_before=(),
    engine=Engine(
        name="JAX sharding (nnx.jit over a batch-sharded mesh), one process with N devices",
        batch_norm="BN statistics over the global batch (JAX computes them on the sharded batch)",
        one_process=True,
        global_bn=True,
        cpu_sync_bn=True,
        needs=None,
        rank_env=rank_env,
        launcher="XLA_FLAGS=--xla_force_host_platform_device_count={n} python -m resnet_tools.train.parallel JOB.json",
    ),
    exports={"jax-export": (), "saved-model": ("tensorflow",), "tflite": ("tensorflow",)},
    artifacts={
        "jax-export": ArtifactKind(folder=False, suffix=".jax", runtime="jax.export.deserialize (XLA)", dist="jax")
    },
    extra="flax",
    model_base="flax.nnx.module.Module",
    reports=("optax", "jax", "jaxlib"),
    watches=True,
    runs_on=(),
    bench_engines={},
    engine_env="",
    int8={},  # no post-training INT8 path of its own (resnet_flax/int8.py says why)
    best_paths={
        "cpu train": ("Trainer (nnx.jit grads + optax)",),
        "cpu serve": ("nnx.jit fp32",),
        "gpu serve": ("nnx.jit bf16",),
    },  # no GPU training path in resnet bench
)
