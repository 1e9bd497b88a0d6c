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
        loss = torch.nn.functional.cross_entropy(self.model(inp), torch.from_numpy(labels).long().to(self.device))
        loss.backward()
        grad_norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in self.params)))
        self.optimizer.step()
        self.steps += 1
        return {"loss": float(loss.detach().cpu()), "grad_norm": grad_norm}

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
