"""What the tools need to know about this backend, read without importing paddle
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from collections.abc import Sequence

from resnet_spec.frameworks import Descriptor, Engine


def rank_env(rank: int, nproc: int, ports: Sequence[int]) -> dict[str, str]:
    """The environment ``paddle.distributed.launch`` gives process ``rank`` (``ports[0]``: the rendezvous,
    ``ports[1:]``: one endpoint per rank)."""
    endpoints = [f"127.0.0.1:{p}" for p in ports[1:]]
    return {"PADDLE_TRAINER_ID": str(rank), "PADDLE_TRAINERS_NUM": str(nproc),
            "PADDLE_MASTER": f"127.0.0.1:{ports[0]}", "PADDLE_TRAINER_ENDPOINTS": ",".join(endpoints),
            "PADDLE_CURRENT_ENDPOINT": endpoints[rank], "PADDLE_DISTRI_BACKEND": "gloo",
            "GLOG_minloglevel": "2"}  # fmt: skip


DESCRIPTOR = Descriptor(
    framework="paddle",
    package="resnet_paddle",
    module="paddle",
    distribution="paddlepaddle",
    import_before=("tensorflow",),  # paddle 3.3.1 segfaults when imported after TensorFlow 2.21 (measured)
    engine=Engine(
        name="paddle.DataParallel over gloo (CPU) / NCCL (GPU)",
        batch_norm="per-replica BN statistics",
        one_process=False,
        global_bn=False,
        cpu_sync_bn=False,  # paddle's SyncBatchNorm has no CPU kernel
        needs=None,
        rank_env=rank_env,
        launcher="python -m paddle.distributed.launch --nproc_per_node {n} resnet_tools/train/parallel.py JOB.json",
    ),
    exports={"onnx": ("onnx", "paddle2onnx", "onnxruntime"), "paddle-inference": ()},
    extra="paddle",
    model_base="paddle.nn.layer.layers.Layer",
    runs_on=(),
    engine_env="",
)
