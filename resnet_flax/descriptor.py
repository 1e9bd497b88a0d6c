"""What the tools need to know about this backend, read without importing flax
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from resnet_spec.frameworks import Descriptor

DESCRIPTOR = Descriptor(
    framework="flax",
    package="resnet_flax",
    module="flax",
    distribution="flax",
    import_before=(),
    engine=None,  # data-parallel training on JAX's sharding: not built yet (resnet train --nproc refuses it)
    exports={},  # jax.export / StableHLO: not built yet (resnet export names the formats it has)
    extra="flax",
    model_base="flax.nnx.module.Module",
    reports=("optax", "jax", "jaxlib"),
    watches=False,
    runs_on=(),
    bench_engines={},
    engine_env="",
)
