"""What the tools need to know about this backend, read without importing paddle
(``resnet_tools.core.backends.descriptor``): its framework, engine, exporters."""

from __future__ import annotations

from resnet_spec.frameworks import ArtifactKind, Descriptor, Engine, Rank


def rank_env(r: Rank) -> dict[str, str]:
    """The environment ``paddle.distributed.launch`` gives a process. Over gloo, paddle's group meets at
    ``PADDLE_MASTER``; the endpoints are this node's ports (paddle reads its own, ``PADDLE_CURRENT_ENDPOINT``)."""
    host = r.master.rpartition(":")[0]
    endpoints = [f"{host}:{r.ports[i % len(r.ports)]}" for i in range(r.world)]
    return {"PADDLE_TRAINER_ID": str(r.rank), "PADDLE_TRAINERS_NUM": str(r.world), "PADDLE_MASTER": r.master,
            "PADDLE_TRAINER_ENDPOINTS": ",".join(endpoints), "PADDLE_CURRENT_ENDPOINT": endpoints[r.rank],
            "PADDLE_DISTRI_BACKEND": "gloo", "GLOG_minloglevel": "2"}  # fmt: skip


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
    artifacts={
        "paddle-inference": ArtifactKind(
            folder=True, suffix="", runtime="Paddle Inference (oneDNN)", dist="paddlepaddle"
        )
    },
    extra="paddle",
    model_base="paddle.nn.layer.layers.Layer",
    reports=("paddlepaddle-gpu",),
    watches=True,
    runs_on=(),
    bench_engines={},
    engine_env="",
    int8={"paddle-ptq": ("paddle-inference", ())},  # post-training INT8 (resnet_paddle/int8.py)
    best_paths={
        "cpu train": ("dygraph",),
        "cpu serve": ("Paddle Inference",),
        "gpu serve": ("Paddle Inference TensorRT fp16",),
    },  # no GPU training path in resnet bench
)
