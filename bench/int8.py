"""INT8 across frameworks, measured for the docs: every INT8 path installed here on two checkpoints, each against
its float source on held-out digits, with its speed-up over the same format's float artifact in the same runtime:

- the digits ResNet-18 (CIFAR stem, 32x32; trained here with plain torch SGD, as the accuracy certificate's),
- a random-weight ResNet-50 (64x64, 10 classes) whose BN statistics are calibrated on the digits (a forward pass in
  train mode over the training split), so its activations have real ranges.

Writes docs/generated/int8.json, int8.md and int8_blocks.png (make docs-data).

    .venv/bin/python bench/int8.py [--render]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "generated"


def trained_resnet18(folder: Path, size: int) -> Path:
    """A digits ResNet-18 trained by plain torch SGD for 3 epochs, saved as a user saves a state_dict."""
    import torch

    import resnet_torch
    from resnet_spec import get_spec
    from resnet_tools.train.data import load_digits

    torch.manual_seed(0)
    data = load_digits(size)
    model = resnet_torch.create_model(get_spec("resnet18", num_classes=10, stem="cifar", in_channels=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model.train()
    for _ in range(3):
        for idx in torch.randperm(len(x)).split(64):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = folder / "digits_resnet18.pt"
    torch.save(model.state_dict(), path)
    return path


def calibrated_resnet50(folder: Path, size: int) -> Path:
    """A random-weight ResNet-50 (1 channel, 10 classes) whose BN running statistics are the digits' (cumulative
    averages over the training split in train mode, no weight updated)."""
    import torch

    import resnet_torch
    from resnet_spec import get_spec
    from resnet_tools.train.data import load_digits

    torch.manual_seed(0)
    model = resnet_torch.create_model(get_spec("resnet50", num_classes=10, in_channels=1))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch weighs the same
    x = torch.from_numpy(load_digits(size).x_train)
    model.train()
    with torch.no_grad():
        for idx in torch.arange(len(x)).split(64):
            model(x[idx])
    path = folder / "random_resnet50.pt"
    torch.save(model.eval().state_dict(), path)
    return path


def render(records: list[dict[str, Any]]) -> str:
    """The docs table: one section per checkpoint, one row per INT8 path."""
    from resnet_tools.core.dated import measured_on

    lines: list[str] = []
    for rec in records:
        lines += [
            f"**{rec['title']}**: {rec['model']}, input {rec['input']}, calibrated on {rec['calibration']}; "
            f"{measured_on(rec['date'])} on {rec['cores']} cores ({rec['machine']}), {rec['threads']} runtime threads; "
            f"{rec['versions']}.",
            "",
            "| INT8 path (framework) | top-1 float | top-1 INT8 | argmax agreement | logit drift | worst block | "
            "float img/s | INT8 img/s | speed-up | verdict |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for r in rec["reports"]:
            s = r.get("speed") or {}
            lines.append(
                f"| {r['path']} ({r['backend']}) | {r['top1_float']:.2%} | {r['top1_int8']:.2%} | "
                f"{r['agreement']:.2%} | {r['logit_drift']:.1e} | {r['worst_block']} "
                f"{r['blocks'].get(r['worst_block'], 0):.1e} | {s.get('float_img_s', 0):.0f} | "
                f"{s.get('int8_img_s', 0):.0f} | {s.get('speedup', 0):.2f}x (batch {s.get('batch', '-')}) | "
                + ("**collapse**" if r["collapsed"] else "kept")
                + " |"
            )
        lines += ["", "Schemes: " + "; ".join(f"{r['path']}: {r['scheme']}" for r in rec["reports"]) + ".", ""]
    return "\n".join(lines)


def chart(records: list[dict[str, Any]], path: Path) -> None:
    """Per-block drift of each INT8 path, one panel per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(6 * len(records), 3.6), squeeze=False)
    for ax, rec in zip(axes[0], records, strict=True):
        for r in rec["reports"]:
            blocks = list(r["blocks"])
            ax.plot(
                range(len(blocks)), [r["blocks"][b] for b in blocks], marker="o", label=f"{r['path']} ({r['backend']})"
            )
        ax.set_xticks(range(len(blocks)), blocks, rotation=90, fontsize=6)
        ax.set_yscale("log")
        ax.set_ylabel("max |INT8 - float| / max |float|")
        ax.set_title(f"{rec['title']} ({rec['date']})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--render", action="store_true", help="only re-render int8.md and the chart from int8.json")
    args = p.parse_args()
    if not args.render:
        from resnet_tools.export.int8.paths import parse_paths
        from resnet_tools.export.int8.suite import int8_parity

        records = []
        with tempfile.TemporaryDirectory() as tmp:
            cases = [("digits-trained ResNet-18", trained_resnet18(Path(tmp), 32), 32),
                     ("random-weight ResNet-50, BN statistics calibrated on the digits",
                      calibrated_resnet50(Path(tmp), 64), 64)]  # fmt: skip
            for title, ckpt, size in cases:
                rec = int8_parity(str(ckpt), "digits", parse_paths(None), size=size)
                records.append({"title": title, **rec, "weights": ckpt.name})
        (OUT / "int8.json").write_text(json.dumps(records, indent=1) + "\n")
    records = json.loads((OUT / "int8.json").read_text())
    (OUT / "int8.md").write_text(render(records))
    chart(records, OUT / "int8_blocks.png")
    print(f"wrote {OUT / 'int8.md'} and int8_blocks.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
