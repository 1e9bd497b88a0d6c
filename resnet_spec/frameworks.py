"""One record per framework: how its zoo names and lays out a ResNet's tensors, and which numerical conventions
it follows. ``naming`` and ``numerics`` read these records; no other module needs to know a framework by name.
Adding a framework (as Flax was, or MLX) starts with one record here (and its backend package)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from resnet_spec import layouts

#: A named layout transform of one tensor (``resnet_spec.layouts``).
Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Conventions:
    """How one framework's zoo names, lays out and updates a ResNet's tensors."""

    name: str
    attrs: Mapping[str, Mapping[str, str]]  # module kind -> canonical attribute -> native attribute, in its order
    to_native: Mapping[tuple[str, str], Transform]  # (kind, attribute) -> canonical layout to native
    from_native: Mapping[tuple[str, str], Transform]  # and back
    key_sep: str  # between the module and the attribute in a state-dict key
    layer_names: str  # "module paths" (torchvision: layer1.0.conv1), "keras.applications" or "flax example"
    bn_momentum: str  # "new batch" (the weight of the batch statistic) or "running" (the weight of the average)
    running_var: str  # the variance BN's running average takes in: "unbiased" (n - 1) or "biased" (n)

    def native_attr(self, kind: str, attr: str) -> str:
        return self.attrs[kind][attr]


# --8<-- [start:naming]
TORCH = Conventions(
    name="torch",
    attrs={
        "conv": {"weight": "weight", "bias": "bias"},
        "bn": {"weight": "weight", "bias": "bias", "running_mean": "running_mean", "running_var": "running_var"},
        "fc": {"weight": "weight", "bias": "bias"},
    },
    to_native={},
    from_native={},
    key_sep=".",
    layer_names="module paths",
    bn_momentum="new batch",
    running_var="unbiased",
)
PADDLE = Conventions(
    name="paddle",
    attrs={
        "conv": {"weight": "weight", "bias": "bias"},
        "bn": {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance"},
        "fc": {"weight": "weight", "bias": "bias"},
    },
    to_native={("fc", "weight"): layouts.linear_out_in_to_in_out},  # paddle nn.Linear is [in, out]
    from_native={("fc", "weight"): layouts.linear_in_out_to_out_in},
    key_sep=".",
    layer_names="module paths",
    bn_momentum="running",
    running_var="biased",
)
KERAS = Conventions(
    name="keras",
    attrs={
        "conv": {"weight": "kernel", "bias": "bias"},
        "bn": {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"},
        "fc": {"weight": "kernel", "bias": "bias"},
    },
    to_native={
        ("conv", "weight"): layouts.oihw_to_hwio,  # keras Conv2D kernel is HWIO
        ("fc", "weight"): layouts.linear_out_in_to_in_out,  # keras Dense kernel is [in, out]
    },
    from_native={("conv", "weight"): layouts.hwio_to_oihw, ("fc", "weight"): layouts.linear_in_out_to_out_in},
    key_sep="/",
    layer_names="keras.applications",
    bn_momentum="running",
    running_var="biased",
)
FLAX = Conventions(
    name="flax",
    attrs={
        "conv": {"weight": "kernel", "bias": "bias"},
        "bn": {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"},
        "fc": {"weight": "kernel", "bias": "bias"},
    },
    to_native={
        ("conv", "weight"): layouts.oihw_to_hwio,  # flax nnx.Conv kernel is HWIO
        ("fc", "weight"): layouts.linear_out_in_to_in_out,  # flax nnx.Linear kernel is [in, out]
    },
    from_native={("conv", "weight"): layouts.hwio_to_oihw, ("fc", "weight"): layouts.linear_in_out_to_out_in},
    key_sep="/",
    layer_names="flax example",  # Flax's examples/imagenet: conv_init, ResNetBlock_N/Conv_0, conv_proj, Dense_0
    bn_momentum="running",
    running_var="biased",
)
# --8<-- [end:naming]

CONVENTIONS: dict[str, Conventions] = {c.name: c for c in (TORCH, PADDLE, KERAS, FLAX)}
FRAMEWORKS = tuple(CONVENTIONS)


def conventions(framework: str) -> Conventions:
    """The record of ``framework``; an unknown name is a ValueError naming the known ones."""
    try:
        return CONVENTIONS[framework]
    except KeyError:
        raise ValueError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}") from None


# ---- what the tools need from a backend package, besides naming: its descriptor ---------------------------------


@dataclass(frozen=True)
class Rank:
    """One process of a data-parallel group, as its launcher sees it."""

    rank: int  # the process's index in the group (over every node)
    world: int  # the processes in the group
    local_rank: int  # its index on its node
    local_replicas: int  # the replicas this node runs (processes, or devices of one process)
    master: str  # the rendezvous, "host:port" (node 0)
    ports: tuple[int, ...]  # free ports on this node, one per local process (endpoints where a framework wants them)


#: The environment a framework's own launcher gives one process.
RankEnv = Callable[[Rank], dict[str, str]]


@dataclass(frozen=True)
class Engine:
    """A backend's data-parallel engine, as ``resnet train --nproc`` drives it."""

    name: str  # what it is, for the run's first line ("DistributedDataParallel over gloo (CPU) / NCCL (GPU)")
    batch_norm: str  # how it computes BN batch statistics without --sync-bn
    one_process: bool  # one process holds every replica (JAX devices), not one process per replica
    global_bn: bool  # BN statistics over the global batch already (--sync-bn changes nothing)
    cpu_sync_bn: bool  # a synchronised BN runs on the CPU (torch's SyncBatchNorm and paddle's do not)
    needs: tuple[str, str] | None  # (a module besides the framework, what to install), or None
    rank_env: RankEnv
    launcher: str  # the framework's own launcher for N processes, as a user types it ({n}: processes)

    def processes(self, nproc: int) -> int:
        """How many processes ``nproc`` replicas take."""
        return 1 if self.one_process else nproc


@dataclass(frozen=True)
class ArtifactKind:
    """An artifact format (``resnet export --format``): one framework's own, run by its runtime, or a shared one
    several frameworks write (``resnet_tools.export.formats.SHARED``)."""

    folder: bool  # a folder (SavedModel, Paddle Inference) rather than one file
    suffix: str  # the usual file suffix ("" for folders)
    runtime: str  # what runs it here, for tables and messages
    dist: str  # the PyPI distribution of that runtime (its version goes in reports)


@dataclass(frozen=True)
class Descriptor:
    """One backend package's operational facts, read without importing its framework
    (``resnet_<name>/descriptor.py``; ``resnet_tools.core.backends.descriptor`` reads it)."""

    framework: str  # the key of its Conventions record
    package: str  # the backend package (resnet_torch)
    module: str  # the framework's import name (installed or not: checked without importing it)
    distribution: str  # its PyPI distribution (versions in reports)
    import_before: tuple[str, ...]  # modules that must not be imported before the framework (a segfault)
    engine: Engine | None  # its data-parallel engine, if it has one
    exports: Mapping[str, tuple[str, ...]]  # artifact format -> modules its exporter needs besides the framework
    artifacts: Mapping[str, ArtifactKind]  # the formats it alone writes (shared ones: export.formats.SHARED)
    extra: str  # the pip extra that installs it: pip install 'resnet-xf[extra]'
    model_base: str  # the class in a user's model's hierarchy that says it is this framework's (module.Class)
    reports: tuple[str, ...]  # PyPI distributions whose versions a report records besides its own (jaxlib)
    watches: bool  # foreign.run_watched runs a user's model layer by layer (the course's checker)
    runs_on: tuple[str, ...]  # compute engines it runs on (Keras: TF, JAX, torch), the CPU default first; () if one
    bench_engines: Mapping[str, tuple[str, ...]]  # device -> the other engines `resnet bench` also runs it on
    engine_env: str  # the variable that picks the compute engine ("" if it runs on one)
    best_paths: Mapping[str, tuple[str, ...]]  # "cpu train", "gpu serve", ... -> the bench paths `resnet choose` times
    #: its own INT8 paths (``<package>.int8``) -> (the artifact format each writes, the modules it needs besides it)
    int8: Mapping[str, tuple[str, tuple[str, ...]]]


#: The facts a descriptor must give (a missing one is named by the completeness test).
DESCRIPTOR_FACTS = tuple(Descriptor.__dataclass_fields__)
ENGINE_FACTS = tuple(Engine.__dataclass_fields__)
