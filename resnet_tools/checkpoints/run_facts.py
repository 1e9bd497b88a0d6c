"""What a derived spec cannot read off the weights, read off the user's model's run instead (``--reference``): each
conv's stride (its input's size against its output's), whether the stem pools (the stem conv's output against the
first block's input) and whether a ReLU follows the stem's BN (the first block's input has no negative value).

A derived spec (``resnet_spec.derive``) takes these as He et al. build them; a tutorial model that strides in every
block, keeps no stem pool and no stem ReLU is then proved wrong. With the run, the spec says what the model does,
and the proof (``reference.prove``) checks it block by block as for any other spec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.params import canonical_table
from resnet_spec.plan import plan_stages, stem_layers
from resnet_tools.checkpoints.units import Trace, Unit


def spatial(array: np.ndarray, channels: int) -> tuple[int, int] | None:
    """(H, W) of a feature map with ``channels`` channels, NCHW or NHWC (Keras'); None where it cannot say."""
    if array.ndim != 4:
        return None
    if array.shape[1] == channels:
        return int(array.shape[2]), int(array.shape[3])
    if array.shape[3] == channels:
        return int(array.shape[1]), int(array.shape[2])
    return None


def conv_stride(unit: Unit, t: Trace) -> int | None:
    """The stride a conv ran at: the one that takes its input's size to its output's with symmetric padding."""
    if unit.path not in t.module_in or unit.path not in t.module_out:
        return None
    cout, cin, k = unit.shape[0], unit.shape[1], unit.shape[2]
    size_in, size_out = spatial(t.module_in[unit.path], cin), spatial(t.module_out[unit.path], cout)
    if size_in is None or size_out is None:
        return None
    pad = (k - 1) // 2
    pairs = list(zip(size_in, size_out, strict=True))
    fits = [s for s in (1, 2) if all((i + 2 * pad - k) // s + 1 == o for i, o in pairs)]  # the spec's strides
    return fits[0] if len(fits) == 1 else None


def read_off_run(spec: ModelSpec, mapped: Mapping[str, Unit], t: Trace) -> tuple[ModelSpec, list[str]]:
    """``spec`` with its strides, stem pool and stem ReLU as the run shows them, and a note; ``spec`` itself where
    the run shows nothing else or what it shows is not a spec of the same tensors (the proof then names the block)."""
    strides = {module: conv_stride(u, t) for module, u in mapped.items() if u.kind == "conv"}
    stem = stem_layers(spec)
    first_conv, last_conv = mapped.get(stem[0][0]), mapped.get(stem[-1][0])
    stem_stride = strides.get(stem[0][0])
    stages = plan_stages(spec)
    block_strides: list[list[tuple[int, ...]]] = []
    for blocks in stages:
        block_strides.append([])
        for b in blocks:
            per_conv = tuple(strides.get(f"layer{b.stage}.{b.index}.conv{k + 1}") for k in range(len(b.convs)))
            if any(s is None for s in per_conv):
                return spec, []
            block_strides[-1].append(tuple(int(s or 1) for s in per_conv))
    if stem_stride is None or first_conv is None or last_conv is None:
        return spec, []
    entry = mapped.get(f"layer{stages[0][0].stage}.{stages[0][0].index}.conv1")
    if entry is None or entry.path not in t.module_in or last_conv.path not in t.module_out:
        return spec, []
    stem_out = spatial(t.module_out[last_conv.path], last_conv.shape[0])
    block_in = spatial(t.module_in[entry.path], entry.shape[1])
    if stem_out is None or block_in is None:
        return spec, []
    pool = block_in != stem_out
    relu = bool(np.min(t.module_in[entry.path]) >= 0) if spec.stem.norm else spec.stem.relu
    placed = _placement(spec, block_strides)
    if placed is None:
        return spec, []
    stage_strides, stride_block, stride_on = placed
    refined = dataclasses.replace(
        spec,
        stage_strides=stage_strides,
        stride_block=stride_block,
        stride_on=stride_on,
        stem=dataclasses.replace(spec.stem, stride=stem_stride, pool=pool, relu=relu),
    )
    if refined == spec:
        return spec, []
    if [(e.name, e.shape) for e in canonical_table(refined)] != [(e.name, e.shape) for e in canonical_table(spec)]:
        return spec, []
    note = (
        f"read off your model's run, as no weight shows them: stage strides {', '.join(map(str, stage_strides))} "
        f"(in each stage's {stride_block} block), the stem at stride {stem_stride}, "
        f"{'with' if pool else 'without'} a max-pool, {'with' if relu else 'without'} a ReLU after its BN"
    )
    return refined, [note]


def _placement(
    spec: ModelSpec, block_strides: Sequence[Sequence[tuple[int, ...]]]
) -> tuple[tuple[int, ...], str, str] | None:
    """(stage strides, the block of a stage that strides, the conv of a bottleneck that does) from each block's
    convs' strides; None where the spec language cannot say it (two strided blocks in a stage, a basic block
    striding on its second conv)."""
    stage_strides, where, on = [], set(), set()
    for blocks in block_strides:
        strided = [i for i, convs in enumerate(blocks) if max(convs) > 1]
        if len(strided) > 1 or any(sum(s > 1 for s in convs) > 1 for convs in blocks):
            return None
        if not strided:
            stage_strides.append(1)
            continue
        i = strided[0]
        convs = blocks[i]
        stage_strides.append(max(convs))
        if len(blocks) > 1:
            where.add("first" if i == 0 else "last" if i == len(blocks) - 1 else "middle")
        k = next(j for j, s in enumerate(convs) if s > 1)
        if spec.block == "basic" and k != 0:
            return None
        if spec.block == "bottleneck":
            on.add("conv1x1" if k == 0 else "conv3x3" if k == 1 else "last")
    if len(where) > 1 or "middle" in where or len(on) > 1 or "last" in on:
        return None
    return tuple(stage_strides), (where.pop() if where else spec.stride_block), (on.pop() if on else spec.stride_on)
