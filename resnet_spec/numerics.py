"""Every numerical convention that differs between frameworks, translated in one place.

The spec stores BN momentum in torch's convention (weight of the NEW batch statistic).
"""

from __future__ import annotations

import math
from typing import Any

from resnet_spec.frameworks import conventions
from resnet_spec.model_spec import ModelSpec
from resnet_spec.plan import ConvPlan


# --8<-- [start:bn-momentum]
def bn_momentum(spec: ModelSpec, framework: str) -> float:
    """The spec's BN momentum (torch's convention: the weight of the NEW batch statistic) in ``framework``'s, as its
    ``Conventions.bn_momentum`` names it:

    - "new batch" (torch): running = (1 - m) * running + m * batch -> m as is (0.1);
    - "running" (paddle, keras): running = m * running + (1 - m) * batch -> m = 1 - torch's (0.1 -> 0.9).
    """
    kind = conventions(framework).bn_momentum
    if kind == "new batch":
        return spec.bn_momentum
    if kind == "running":
        return 1.0 - spec.bn_momentum
    raise ValueError(f"{framework}: unknown BN momentum convention {kind!r}")


# --8<-- [end:bn-momentum]


# --8<-- [start:running-var]
def torch_running_var_as_biased(new: Any, old: Any, momentum: float, count: int) -> Any:  # array or tensor
    """Translate torch's updated ``running_var`` into the paddle/keras convention.

    torch: new = (1 - m) * old + m * var_unbiased, with var_unbiased = var_biased * n / (n - 1);
    paddle and keras use var_biased. So the batch term is rescaled by (n - 1) / n, where
    ``count`` = n = N * H * W per channel of that BN's input (``resnet_spec.shapes.bn_counts``).
    """
    kept = (1.0 - momentum) * old
    return kept + (new - kept) * ((count - 1) / count)


# --8<-- [end:running-var]


def conv_init_std(conv: ConvPlan) -> float:
    """He-normal std with fan_out = out_channels * k * k (torchvision's init), used by all backends."""
    return math.sqrt(2.0 / (conv.out_channels * conv.kernel * conv.kernel))


def linear_init_bound(in_features: int) -> float:
    """Uniform(-b, b) bound for the classifier's weight and bias (torch's nn.Linear default)."""
    return 1.0 / math.sqrt(in_features)
