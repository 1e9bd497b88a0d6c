"""Seeded, non-trivial canonical weights: random BN statistics and affine terms, random biases.

Default initialisation hides bugs (gamma=1, beta=0, mean=0, var=1 make a swapped mean/var
invisible); these weights make every tensor matter. Only numpy is used.
"""

from __future__ import annotations

import numpy as np

from resnet_spec.model_spec import ModelSpec
from resnet_spec.numerics import conv_init_std, linear_init_bound
from resnet_spec.params import canonical_table
from resnet_spec.plan import ConvPlan


def random_weights(spec: ModelSpec, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Canonical weights for ``spec`` drawn from a seeded generator."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for e in canonical_table(spec):
        if e.kind == "conv" and e.attr == "weight":
            o, i, k, _ = e.shape
            # He-normal scale keeps activations bounded through deep stacks.
            arr = rng.normal(0.0, conv_init_std(ConvPlan(i, o, k, 1, 1, 1, False)), e.shape)
        elif e.attr == "running_var":
            arr = rng.uniform(0.5, 2.0, e.shape)
        elif e.attr == "running_mean":
            arr = rng.normal(0.0, 0.2, e.shape)
        elif e.kind == "bn" and e.attr == "weight":
            arr = rng.uniform(0.3, 1.2, e.shape)
        elif e.kind == "fc" and e.attr == "weight":
            arr = rng.uniform(-1.0, 1.0, e.shape) / np.sqrt(e.shape[1])
        else:  # conv / BN / fc biases
            arr = rng.normal(0.0, 0.1, e.shape)
        out[e.name] = arr.astype(dtype)
    return out


def initial_weights(spec: ModelSpec, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    """A seeded training initialisation, the same in every framework: He-normal convolutions (fan-out,
    as torchvision initialises them), BN scale 1 and shift 0, running mean 0 and variance 1, biases 0,
    and the classifier uniform in +-1/sqrt(fan_in) (torch's Linear default)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    table = canonical_table(spec)
    fc_in = next((e.shape[1] for e in table if e.kind == "fc" and e.attr == "weight"), 1)
    for e in table:
        if e.kind == "conv" and e.attr == "weight":
            o, i, k, _ = e.shape
            arr = rng.normal(0.0, conv_init_std(ConvPlan(i, o, k, 1, 1, 1, False)), e.shape)
        elif e.kind == "fc":  # weight [out, in] and bias, as torch's nn.Linear draws them
            arr = rng.uniform(-1.0, 1.0, e.shape) * linear_init_bound(fc_in)
        elif e.attr in ("running_var",) or (e.kind == "bn" and e.attr == "weight"):
            arr = np.ones(e.shape)
        else:  # running means, BN shifts, biases
            arr = np.zeros(e.shape)
        out[e.name] = arr.astype(dtype)
    return out
