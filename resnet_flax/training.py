"""Training with optax, Flax's optimizer library; its state in canonical form (resnet_spec/optim.py).

optax's ``trace`` is torch's momentum buffer (``v = mu * v + g``) and ``scale_by_adam`` torch's AdamW moments
(``eps`` beside ``sqrt(v_hat)``), so the state needs no conversion; the learning rate is applied here, outside optax,
so a schedule changes it as torch's ``param_groups`` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from resnet_flax.model import ResNet
from resnet_flax.runtime import flat, loss_and_grads, on
from resnet_flax.weights import FRAMEWORK, native_state
from resnet_spec.layouts import nchw_to_nhwc
from resnet_spec.naming import from_native, native_table, to_native
from resnet_spec.optim import STEP_KEY, OptimizerConfig, state_key

Tree = dict[str, Any]


class Trainer:
    """A model and its optax optimizer (SGD with momentum and coupled L2, or AdamW), stepped at a given rate.

    Example:
        >>> from resnet_spec.optim import OptimizerConfig
        >>> t = Trainer(create_model("resnet18", stem="cifar", num_classes=10), OptimizerConfig("sgd", lr=0.1))
    """

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu") -> None:
        self.model, self.config, self.device = model, config, device
        self.entries = [ne for ne in native_table(model.spec, FRAMEWORK) if ne.entry.trainable]
        self.variables = native_state(model)
        if config.kind == "sgd":  # torch's form: v = mu*v + g + wd*p; p -= lr*v (coupled L2)
            self.tx = optax.chain(optax.add_decayed_weights(config.weight_decay), optax.trace(decay=config.momentum))
        else:  # m_hat / (sqrt(v_hat) + eps); the decoupled decay is added below, as torch's AdamW does
            self.tx = optax.scale_by_adam(b1=config.betas[0], b2=config.betas[1], eps=config.eps)
        with on(device):
            self.opt_state = self.tx.init(self.params())
        self.steps = 0

    def params(self) -> Tree:
        """The trainable parameters as ``{native key: array}`` (the tree optax works on)."""
        return {ne.key: self.variables[ne.key].get_value() for ne in self.entries}

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]:
        """One train-mode step on cross-entropy at learning rate ``lr``; the loss and the gradient norm."""
        with on(self.device):
            loss, grads = self.loss_and_grads(nchw_to_nhwc(x), labels)
            return self.apply(grads, float(loss), lr)

    def loss_and_grads(self, inp: np.ndarray, labels: np.ndarray) -> tuple[Any, Tree]:
        """The train-mode loss and the parameters' gradients by native key, for an NHWC batch (a data-parallel
        trainer shards the batch over its devices first)."""
        _logits, loss, _input_grad, grads = loss_and_grads(self.model, jnp.asarray(inp), labels)
        return loss, flat(grads)

    def apply(self, grads: Tree, loss: float, lr: float) -> dict[str, float]:
        """One update with gradients by native key (a data-parallel trainer averages them first)."""
        grads = {ne.key: grads[ne.key] for ne in self.entries}
        grad_norm = float(np.sqrt(sum(np.sum(np.square(np.asarray(g, dtype=np.float64))) for g in grads.values())))
        params = self.params()
        updates, self.opt_state = self.tx.update(grads, self.opt_state, params)
        wd = self.config.weight_decay if self.config.kind == "adamw" else 0.0
        for key, p in params.items():  # p *= 1 - lr * wd; p -= lr * update (canonical form)
            self.variables[key].set_value(p - lr * wd * p - lr * updates[key] if wd else p - lr * updates[key])
        self.steps += 1
        return {"loss": loss, "grad_norm": grad_norm}

    def _slots(self) -> dict[str, Tree]:
        """The optimizer's per-parameter trees by canonical slot name."""
        if self.config.kind == "sgd":
            return {"momentum_buffer": self.opt_state[1].trace}
        adam = self.opt_state
        return {"exp_avg": adam.mu, "exp_avg_sq": adam.nu}

    def export_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as ``{parameter@slot: array}`` in canonical layouts (+ ``@step``)."""
        if self.steps == 0:
            return {STEP_KEY: np.asarray(0.0)} if self.config.kind == "adamw" else {}
        out: dict[str, np.ndarray] = {}
        for slot, tree in self._slots().items():
            for ne in self.entries:
                out[state_key(ne.entry.name, slot)] = from_native(ne.entry, FRAMEWORK, np.asarray(tree[ne.key]))
        if self.config.kind == "adamw":
            out[STEP_KEY] = np.asarray(float(self.steps))
        return out

    def import_state(self, state: Mapping[str, np.ndarray], steps: int) -> None:
        """Load canonical optimizer state (any backend's export) before the next step."""
        trees: dict[str, Tree] = {}
        for slot, held in self._slots().items():
            trees[slot] = {}
            for ne in self.entries:
                key, current = state_key(ne.entry.name, slot), held[ne.key]
                value = to_native(ne.entry, FRAMEWORK, np.asarray(state[key])) if key in state else np.zeros(ne.shape)
                trees[slot][ne.key] = jnp.asarray(value, dtype=current.dtype)
        if self.config.kind == "sgd":
            self.opt_state = (self.opt_state[0], self.opt_state[1]._replace(trace=trees["momentum_buffer"]))
        else:
            count = jnp.asarray(steps, dtype=self.opt_state.count.dtype)
            self.opt_state = self.opt_state._replace(count=count, mu=trees["exp_avg"], nu=trees["exp_avg_sq"])
        self.steps = steps
