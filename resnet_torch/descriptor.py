"""What the tools need to know about this backend, read without importing torch
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from collections.abc import Sequence

from resnet_spec.frameworks import Descriptor, Engine


def rank_env(rank: int, nproc: int, ports: Sequence[int]) -> dict[str, str]:
    """The environment ``torchrun`` gives process ``rank`` (``ports[0]``: the rendezvous)."""
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(ports[0]), "RANK": str(rank), "WORLD_SIZE": str(nproc),
            "LOCAL_RANK": str(rank)}  # fmt: skip


DESCRIPTOR = Descriptor(
    framework="torch",
    package="resnet_torch",
    module="torch",
    distribution="torch",
    import_before=(),
    engine=Engine(
        name="DistributedDataParallel over gloo (CPU) / NCCL (GPU)",
        batch_norm="per-replica BN statistics",
        one_process=False,
        global_bn=False,
        cpu_sync_bn=False,  # SyncBatchNorm refuses CPU modules
        needs=None,
        rank_env=rank_env,
        launcher="torchrun --nproc-per-node {n} -m resnet_tools.train.parallel JOB.json",
    ),
    exports={"onnx": ("onnx", "onnxscript", "onnxruntime"), "torch-export": ()},
    extra="torch",
    model_base="torch.nn.modules.module.Module",
    runs_on=(),
    engine_env="",
)
