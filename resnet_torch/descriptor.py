"""What the tools need to know about this backend, read without importing torch
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from resnet_spec.frameworks import ArtifactKind, Descriptor, Engine, Rank


def rank_env(r: Rank) -> dict[str, str]:
    """The environment ``torchrun`` gives a process."""
    host, _, port = r.master.rpartition(":")
    return {"MASTER_ADDR": host, "MASTER_PORT": port, "RANK": str(r.rank), "WORLD_SIZE": str(r.world),
            "LOCAL_RANK": str(r.local_rank)}  # fmt: skip


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
    artifacts={"torch-export": ArtifactKind(folder=False, suffix=".pt2", runtime="torch.export.load", dist="torch")},
    extra="torch",
    model_base="torch.nn.modules.module.Module",
    reports=("torchvision",),
    watches=True,
    runs_on=(),
    bench_engines={},
    engine_env="",
    int8={"pt2e": ("torch-export", ("torchao",))},  # post-training INT8 (resnet_torch/int8.py)
    best_paths={
        "cpu train": ("eager",),
        "cpu serve": ("channels_last", "ONNX Runtime"),
        "gpu train": ("train channels_last bf16",),
        "gpu serve": ("torch.compile bf16",),
    },
)
