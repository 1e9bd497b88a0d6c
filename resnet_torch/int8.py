"""PyTorch's own post-training INT8 path: PT2E quantization (torchao's ``prepare_pt2e`` / ``convert_pt2e``) with the
X86 Inductor quantizer, the flow PyTorch documents for CPU deployment: int8 activations (per tensor) and int8
weights (per output channel), ranges observed on calibration images. The converted graph computes with
quantize/dequantize pairs (the numbers the int8 kernels give); ``torch.compile`` lowers it to oneDNN int8 kernels.

Each block's output is read from the converted graph by the module it came from (``nn_module_stack``), so the drift
of every block against the float model is known.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnet_spec.errors import ResNetError
from resnet_torch.model import ResNet

#: This framework's own INT8 paths: name -> what quantizes and what runs it.
PATHS = {
    "pt2e": "PT2E (torchao prepare_pt2e/convert_pt2e), X86InductorQuantizer; torch.compile runs it on oneDNN",
}
_BLOCK = re.compile(r"(?:L\['self'\]\.)?(layer\d+\.\d+)")  # the module path of a residual block


def _block_outputs(gm: torch.fx.GraphModule) -> dict[str, str]:
    """block ("layer2.0") -> the name of its last node (its output), from the nodes' ``nn_module_stack``."""
    found: dict[str, str] = {}
    for node in gm.graph.nodes:
        for path, _kind in (node.meta.get("nn_module_stack") or {}).values():
            m = _BLOCK.fullmatch(path)
            if m and node.op == "call_function":
                found[m[1]] = node.name  # the last one in graph order wins
    return found


def _untangle(gm: torch.fx.GraphModule) -> None:
    """Give each call of a module its own source. Our blocks, like torchvision's, call one ``self.relu`` twice;
    torchao 0.18's X86 quantizer then takes both calls for one partition and stops ("Input partition has more than
    one output node", measured with torch 2.13). The graph is unchanged; only this metadata is."""
    for node in gm.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if stack:
            key = list(stack)[-1]
            path, kind = stack[key]
            stack[key] = (f"{path}@{node.name}", kind)


class Quantized:
    """A PT2E-converted model: its logits and block outputs on NCHW numpy input, and its file."""

    def __init__(self, gm: torch.fx.GraphModule, blocks: dict[str, str], example: torch.Tensor) -> None:
        self.gm, self.blocks, self.example = gm, blocks, example
        self.suffix, self.batch = ".pt2", 64  # the batch is free
        self.scheme = "weights per channel, activations per tensor (X86InductorQuantizer)"

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``{"layer1.0": ..., ..., "logits": ...}`` on ``x``, in batches of 64."""
        wanted = {name: block for block, name in self.blocks.items()}
        parts: list[dict[str, np.ndarray]] = []

        class Recorder(torch.fx.Interpreter):
            def run_node(self, n: torch.fx.Node) -> Any:
                out = super().run_node(n)
                if n.name in wanted:
                    seen[wanted[n.name]] = out.detach().numpy().copy()
                return out

        for i in range(0, len(x), 64):
            seen: dict[str, np.ndarray] = {}
            with torch.no_grad():
                logits = Recorder(self.gm).run(torch.from_numpy(np.ascontiguousarray(x[i : i + 64])))
            parts.append({**seen, "logits": logits.numpy()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def save(self, out: Path) -> None:
        """The converted program as ``torch.export`` writes it (``.pt2``), loadable with ``torch.export.load``."""
        program = torch.export.export(self.gm, (self.example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
        torch.export.save(program, str(out))


def quantize(
    model: ResNet, calibration: np.ndarray, path: str, per_channel: bool = True, threads: int = 2
) -> Quantized:
    """``model`` quantized by ``path`` ("pt2e") with ranges from ``calibration`` (N, C, H, W float32, in batches
    of 16). PT2E's X86 quantizer scales weights per output channel always (``per_channel`` cannot turn it off)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    if path not in PATHS:
        raise ResNetError(f"unknown torch INT8 path {path!r}; known: {', '.join(PATHS)}")
    example = torch.from_numpy(np.ascontiguousarray(calibration[:2]))  # a batch of 2: export keeps the batch free
    gm = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
    blocks = _block_outputs(gm)
    _untangle(gm)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), 16):
            prepared(torch.from_numpy(np.ascontiguousarray(calibration[i : i + 16])))
    return Quantized(convert_pt2e(prepared), blocks, example)
