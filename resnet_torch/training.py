"""Training with torch's own optimizers; their state in canonical form (resnet_spec/optim.py)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from resnet_spec.naming import from_native, native_table, to_native
from resnet_spec.optim import SLOTS, STEP_KEY, OptimizerConfig, state_key
from resnet_torch.model import ResNet
from resnet_torch.runtime import torch_device
from resnet_torch.weights import FRAMEWORK


class Trainer:
    """A model and its optimizer (``torch.optim.SGD`` / ``AdamW``), stepped with a given learning rate.

    Example:
        >>> from resnet_spec.optim import OptimizerConfig
        >>> t = Trainer(create_model("resnet18", stem="cifar", num_classes=10), OptimizerConfig("sgd", lr=0.1))
    """

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu") -> None:
        self.model, self.config, self.device = model, config, torch_device(device)
        self.model.to(self.device)
        named = dict(model.named_parameters())
        self.entries = [ne for ne in native_table(model.spec, FRAMEWORK) if ne.entry.trainable]
        self.params = [named[ne.key] for ne in self.entries]
        if config.kind == "sgd":  # torch's form: v = mu*v + g + wd*p; p -= lr*v (coupled L2)
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                self.params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        else:  # decoupled decay, eps beside sqrt(v_hat): the canonical form
            self.optimizer = torch.optim.AdamW(
                self.params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay
            )
        self.steps = 0

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]:
        """One train-mode step on cross-entropy at learning rate ``lr``; the loss and the gradient norm."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        inp = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        loss = torch.nn.functional.cross_entropy(self.forward(inp), torch.from_numpy(labels).long().to(self.device))
        loss.backward()
        grad_norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in self.params)))
        self.optimizer.step()
        self.steps += 1
        return {"loss": float(loss.detach().cpu()), "grad_norm": grad_norm}

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """The training forward (a data-parallel trainer runs it through its replica wrapper)."""
        return self.model(inp)

    def step_shards(self, shards: list[tuple[np.ndarray, np.ndarray]], lr: float) -> dict[str, float]:
        """One step computed the way N data-parallel replicas compute it, in this one process: each shard's
        forward with its own BN batch statistics, the gradients averaged over shards, one update. The BN
        running statistics follow shard 0 only (DistributedDataParallel broadcasts rank 0's buffers). The
        reference the data-parallel tests compare with; the loss is the mean of the shards' losses."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        total = 0.0
        for k, (x, labels) in enumerate(shards):
            kept = {n: b.clone() for n, b in self.model.named_buffers()} if k else None
            inp = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            target = torch.from_numpy(labels).long().to(self.device)
            loss = torch.nn.functional.cross_entropy(self.model(inp), target) / len(shards)
            loss.backward()  # gradients accumulate: their sum is the average over shards
            total += float(loss.detach().cpu())
            if kept is not None:  # only replica 0's running statistics survive
                for n, b in self.model.named_buffers():
                    b.copy_(kept[n])
        grad_norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in self.params)))
        self.optimizer.step()
        self.steps += 1
        return {"loss": total, "grad_norm": grad_norm}

    def export_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as ``{parameter@slot: array}`` in canonical layouts (+ ``@step``)."""
        out: dict[str, np.ndarray] = {}
        for ne, p in zip(self.entries, self.params, strict=True):
            for slot, value in self.optimizer.state.get(p, {}).items():
                if slot == "step":
                    out[STEP_KEY] = np.asarray(float(value))
                else:
                    out[state_key(ne.entry.name, slot)] = from_native(ne.entry, FRAMEWORK, value.detach().cpu().numpy())
        if self.config.kind == "adamw":
            out.setdefault(STEP_KEY, np.asarray(float(self.steps)))
        return out

    def import_state(self, state: Mapping[str, np.ndarray], steps: int) -> None:
        """Load canonical optimizer state (any backend's export) before the next step."""
        slots = SLOTS[self.config.kind]
        for ne, p in zip(self.entries, self.params, strict=True):
            entry: dict[str, torch.Tensor] = {}
            for slot in slots:
                key = state_key(ne.entry.name, slot)
                if key in state:
                    dtype = str(p.dtype).removeprefix("torch.")
                    native = to_native(ne.entry, FRAMEWORK, np.asarray(state[key], dtype=dtype))
                    entry[slot] = torch.from_numpy(native).to(self.device)
            if entry and self.config.kind == "adamw":
                entry["step"] = torch.tensor(float(steps))
            self.optimizer.state[p] = entry
        self.steps = steps
