"""Why resnet_keras pads every conv explicitly: Keras 'same' vs ZeroPadding2D + 'valid' for stride-1 3x3 convs.

    KERAS_BACKEND=jax python bench/keras_padding.py [--model resnet50v2] [--batch 256] [--size 224]

Times, interleaved and compiled (jax.jit of stateless_call, or XLA tf.function), three builds of one
network in float32 and under mixed_bfloat16: ours (explicit padding), ours with Keras 'same' on the
stride-1 convs (the previous design, rebuilt here by swapping the conv factory), and keras.applications'.
Prints img/s, spread and the time ratio to keras.applications; ``--json`` keeps the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np

import resnet_keras
import resnet_keras.blocks as blocks
from resnet_spec.naming import keras_layer_name
from resnet_tools.bench.paths import keras as bench_gpu
from resnet_tools.bench.paths.keras import KERAS_OFFICIAL
from resnet_tools.bench.rows import Row
from resnet_tools.bench.worker import measure_group

explicit_conv = blocks.conv


def same_conv(plan, module, data_format, zero=False):  # type: ignore[no-untyped-def]
    """The previous factory: Keras 'same' for stride-1 odd kernels (identical math)."""
    if plan.stride != 1 or plan.kernel % 2 == 0 or plan.padding == 0:
        return explicit_conv(plan, module, data_format, zero)
    return keras.layers.Conv2D(
        plan.out_channels,
        plan.kernel,
        padding="same",
        dilation_rate=plan.dilation,
        groups=plan.groups,
        use_bias=plan.bias,
        data_format=data_format,
        name=keras_layer_name(module),
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet50v2")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--min-time", type=float, default=3.0)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    backend = keras.backend.backend()
    x = np.random.default_rng(0).standard_normal((args.batch, args.size, args.size, 3)).astype("float32")

    def with_same() -> keras.Model:
        blocks.conv = same_conv
        try:
            return resnet_keras.create_model(args.model)
        finally:
            blocks.conv = explicit_conv

    impls = {"ours (pad + valid)": lambda: resnet_keras.create_model(args.model), "ours ('same')": with_same}
    if args.model in KERAS_OFFICIAL:
        impls["keras.applications"] = lambda: getattr(keras.applications, KERAS_OFFICIAL[args.model])(
            weights=None, classifier_activation=None, input_shape=(args.size, args.size, 3)
        )
    out = []
    for policy in ("float32", "mixed_bfloat16"):

        def build(make, policy=policy):  # type: ignore[no-untyped-def]
            def runner():  # type: ignore[no-untyped-def]
                keras.config.set_dtype_policy(policy)
                try:
                    model = make()
                finally:
                    keras.config.set_dtype_policy("float32")
                if backend == "jax":
                    return bench_gpu._jax_runner(model, x, tf32=False)
                return bench_gpu._tf_runner(model, x, tf32=False)

            return runner

        rows = [Row(f"keras[{backend}]", args.model, policy, impl, args.batch, "eval", 0) for impl in impls]
        measure_group(rows, [build(m) for m in impls.values()], 1, 3, 10, args.min_time)
        official = next((r for r in rows if r.implementation == "keras.applications"), None)
        for r in rows:
            ratio = official.images_per_s / r.images_per_s if official and r.images_per_s else float("nan")
            print(
                f"{policy:15s} {r.implementation:20s} {r.images_per_s:9.1f} img/s  spread {r.spread:.2f}  "
                f"time / keras.applications {ratio:.2f} {r.error}",
                flush=True,
            )
            out.append(
                {
                    "policy": policy,
                    "implementation": r.implementation,
                    "images_per_s": r.images_per_s,
                    "spread": r.spread,
                    "time_over_official": ratio,
                    "error": r.error,
                }
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"backend": backend, "model": args.model, "batch": args.batch, "size": args.size, "rows": out}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
