"""Training with paddle's own optimizers; their state in canonical form (resnet_spec/optim.py)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_paddle.runtime import paddle_device
from resnet_paddle.weights import FRAMEWORK
from resnet_spec.naming import from_native, native_table, to_native
from resnet_spec.optim import SLOTS, STEP_KEY, OptimizerConfig, state_key

#: paddle's accumulator per canonical slot (its state_dict names them ``{param.name}_{acc}_0``).
_ACCUMULATORS = {"momentum_buffer": "velocity", "exp_avg": "moment1", "exp_avg_sq": "moment2"}


class Trainer:
    """A model and its optimizer (``paddle.optimizer.Momentum`` / ``AdamW``), stepped with a given learning rate.

    Example:
        >>> from resnet_spec.optim import OptimizerConfig
        >>> t = Trainer(create_model("resnet18", stem="cifar", num_classes=10), OptimizerConfig("sgd", lr=0.1))
    """

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu") -> None:
        paddle.set_device(paddle_device(device))
        self.model, self.config = model, config
        named = dict(model.named_parameters())
        self.entries = [ne for ne in native_table(model.spec, FRAMEWORK) if ne.entry.trainable]
        self.params = [named[ne.key] for ne in self.entries]
        if config.kind == "sgd":  # torch's form; a float weight_decay is paddle's L2Decay: coupled, as torch's
            self.optimizer: paddle.optimizer.Optimizer = paddle.optimizer.Momentum(
                learning_rate=config.lr, momentum=config.momentum, parameters=self.params,
                weight_decay=config.weight_decay or None,
            )  # fmt: skip
        else:  # decoupled decay; eps * sqrt(1 - b2^t) beside sqrt(v): the canonical form
            self.optimizer = paddle.optimizer.AdamW(
                learning_rate=config.lr, beta1=config.betas[0], beta2=config.betas[1], epsilon=config.eps,
                parameters=self.params, weight_decay=config.weight_decay,
            )  # fmt: skip
        self.steps = 0

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]:
        """One train-mode step on cross-entropy at learning rate ``lr``; the loss and the gradient norm."""
        self.model.train()
        self.optimizer.set_lr(lr)
        self.optimizer.clear_grad()
        logits = self.forward(paddle.to_tensor(np.ascontiguousarray(x)))
        loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels.astype("int64")))
        loss.backward()
        grad_norm = self._grad_norm()
        self.optimizer.step()
        self.steps += 1
        return {"loss": float(loss.numpy()), "grad_norm": grad_norm}

    def forward(self, inp: paddle.Tensor) -> paddle.Tensor:
        """The training forward (a data-parallel trainer runs it through its replica wrapper)."""
        return self.model(inp)

    def _grad_norm(self) -> float:
        # in numpy: paddle's float64 cast and pow cost a fifth of a resnet18 step on CPU (measured)
        return float(np.sqrt(sum(np.square(p.grad.numpy(), dtype=np.float64).sum() for p in self.params)))

    def step_shards(self, shards: list[tuple[np.ndarray, np.ndarray]], lr: float) -> dict[str, float]:
        """One step computed the way N data-parallel replicas compute it, in this one process: each shard's
        forward with its own BN batch statistics, the gradients averaged over shards, one update. The BN
        running statistics follow shard 0 only (rank 0's, the ones a data-parallel run saves). The
        reference the data-parallel tests compare with; the loss is the mean of the shards' losses."""
        self.model.train()
        self.optimizer.set_lr(lr)
        self.optimizer.clear_grad()
        total = 0.0
        named = dict(self.model.named_parameters())  # paddle's BN running statistics are parameters, not buffers
        stats = [named[ne.key] for ne in native_table(self.model.spec, FRAMEWORK) if not ne.entry.trainable]
        for k, (x, labels) in enumerate(shards):
            kept = [b.numpy().copy() for b in stats] if k else None
            logits = self.model(paddle.to_tensor(np.ascontiguousarray(x)))
            loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels.astype("int64"))) / len(shards)
            loss.backward()  # gradients accumulate: their sum is the average over shards
            total += float(loss.numpy())
            if kept is not None:  # only replica 0's running statistics survive
                for b, value in zip(stats, kept, strict=True):
                    b.set_value(value)
        grad_norm = self._grad_norm()
        self.optimizer.step()
        self.steps += 1
        return {"loss": total, "grad_norm": grad_norm}

    def _name(self, param: paddle.Tensor, slot: str) -> str:
        return f"{param.name}_{_ACCUMULATORS[slot]}_0"

    def export_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as ``{parameter@slot: array}`` in canonical layouts (+ ``@step``)."""
        held = self.optimizer.state_dict()
        out: dict[str, np.ndarray] = {}
        slots = SLOTS[self.config.kind]
        for ne, p in zip(self.entries, self.params, strict=True):
            for slot in slots:
                name = self._name(p, slot)
                if name in held:
                    out[state_key(ne.entry.name, slot)] = from_native(ne.entry, FRAMEWORK, held[name].numpy())
        if self.config.kind == "adamw":
            out[STEP_KEY] = np.asarray(float(self.steps))  # paddle keeps b1^t, b2^t instead of t
        return out

    def import_state(self, state: Mapping[str, np.ndarray], steps: int) -> None:
        """Load canonical optimizer state (any backend's export) before the next step: paddle takes it
        when it creates each accumulator at the first step."""
        loaded: dict[str, np.ndarray] = {}
        slots = SLOTS[self.config.kind]
        for ne, p in zip(self.entries, self.params, strict=True):
            dtype = np.dtype(str(p.dtype).split(".")[-1])
            for slot in slots:
                key = state_key(ne.entry.name, slot)
                if key in state:
                    loaded[self._name(p, slot)] = to_native(ne.entry, FRAMEWORK, np.asarray(state[key], dtype=dtype))
            if self.config.kind == "adamw" and loaded:
                b1, b2 = self.config.betas  # the powers the next step (t = steps + 1) uses
                loaded[f"{p.name}_beta1_pow_acc_0"] = np.array([b1 ** (steps + 1)], dtype=dtype)
                loaded[f"{p.name}_beta2_pow_acc_0"] = np.array([b2 ** (steps + 1)], dtype=dtype)
        self.optimizer.set_state_dict({k: paddle.to_tensor(v) for k, v in loaded.items()})
        self.steps = steps
