"""Render the GPU benchmark JSON files (docs/generated/gpu/bench-gpu-*.json, from bench/gpu_docs_data.sh)
into docs/generated/gpu/bench_gpu.md (one table per file) and bench_gpu.png (batch-256 throughput per path).

Run: .venv/bin/python bench/render_gpu.py [--folder FOLDER]   (make gpu-check renders its own folder)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "docs" / "generated" / "gpu"
SECTIONS = (
    ("bench-gpu-torch-eager.json", "PyTorch eager: fp32, TF32, channels_last + autocast"),
    ("bench-gpu-torch-compile.json", "PyTorch torch.compile (bf16 autocast, channels_last)"),
    ("bench-gpu-torch-30k.json", "Toward 30k img/s: freezing + max-autotune, ONNX Runtime CUDA / TensorRT"),
    ("bench-gpu-torch-train.json", "PyTorch training step (SGD momentum, batch 256)"),
    ("bench-gpu-keras.json", "Keras 3 on JAX (jax.jit of stateless_call)"),
)


def unpinned(versions: dict[str, str]) -> str:
    """The versions a run used that differ from constraints.txt's pins, as "torch 2.11.0 (pinned 2.13.0)"."""
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    return ", ".join(
        f"{name} {v} (pinned {pins[name]})"
        for name, v in versions.items()
        if name in pins and v.split("+")[0] != pins[name]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(GPU), help="where the bench-gpu-*.json files are (and the output goes)")
    folder = Path(parser.parse_args().folder)
    sys.path.insert(0, str(ROOT))
    from render_bench import load_dated  # this folder's renderer of the CPU tables

    from resnet_tools.bench.runner import markdown_table

    parts, rows = [], []
    gpu: str | None = None  # the GPU the figures were measured on, as the bench files record it
    for name, title in SECTIONS:
        if not (folder / name).exists():  # a step left out or cut off: said in the page, not a crash
            parts.append(f"### {title}\n\n*Not measured in this run ({name} is missing).*\n")
            continue
        data = load_dated(folder / name)
        note = f"\n*{data['note']}.*\n" if data.get("note") else ""
        if stale := unpinned(data["machine"]["versions"]):
            note += f"\n*Not the pinned versions: {stale} (constraints.txt); re-run make docs-data-gpu to update.*\n"
        if data.get("complete") is False:  # written as it went, then killed at its time limit
            note += f"\n*Cut off by its time limit: these are the {len(data['rows'])} rows it finished.*\n"
        parts.append(f"### {title}\n\n{markdown_table(data)}{note}")
        gpu = gpu or data["machine"].get("gpu")
        good = [r for r in data["rows"] if not r["error"] and r["mode"] == "eval"]
        rows += [r for r in good if r["batch"] == max(g["batch"] for g in good)]  # the largest batch measured
    (folder / "bench_gpu.md").write_text("\n".join(parts))
    if rows:
        plot(rows, folder / "bench_gpu.png", gpu or "one GPU")
    print(f"wrote {folder / 'bench_gpu.md'}" + (" and bench_gpu.png" if rows else ""))


def plot(rows: list[dict], path: Path, gpu: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["images_per_s"])
    labels = [f"{r['backend']} {r['model']} · {r['path']} · {r['implementation']}" for r in rows]
    colors = ["tab:blue" if r["implementation"] == "ours" else "tab:gray" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.2))
    ax.barh(labels, [r["images_per_s"] for r in rows], color=colors)
    for y, r in enumerate(rows):
        ax.text(
            r["images_per_s"],
            y,
            f" {r['images_per_s']:,.0f} ({r['peak_share']:.0%} of {r['precision']} peak)",
            va="center",
            fontsize=7,
        )
    ax.set_xlabel(f"images/s, batch {rows[-1]['batch']} (blue: ours, grey: torchvision / keras.applications)")
    ax.set_title(f"Inference on {gpu} (input on the device, synchronised)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(0, max(r["images_per_s"] for r in rows) * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
