"""The loss curves of a training run (and, in lockstep, how far the frameworks' weights drift apart) as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_run(records: list[Any], backends: list[str], path: str | Path) -> None:
    """Write the plot of lockstep ``records`` to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.core.files import atomic_write

    steps = [r.step + 1 for r in records]
    several = len(backends) > 1
    fig, axes = plt.subplots(1, 2 if several else 1, figsize=(11 if several else 6, 3.6), squeeze=False)
    for b in backends:
        axes[0][0].plot(steps, [r.loss[b] for r in records], label=b, linewidth=1)
    axes[0][0].set(xlabel="step", ylabel="training loss", title="loss per framework")
    axes[0][0].legend()
    if several:
        axes[0][1].semilogy(steps, [max(r.weight_rel, 1e-18) for r in records])
        axes[0][1].set(xlabel="step", ylabel="max relative weight difference", title="how far the weights drift")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
