"""Training with Keras' own optimizers; their state in canonical form (resnet_spec/optim.py)."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_keras.runtime import keras_device, loss_and_grads
from resnet_keras.weights import FRAMEWORK, native_state
from resnet_spec.layouts import nchw_to_nhwc
from resnet_spec.naming import from_native, native_table, to_native
from resnet_spec.optim import (
    STEP_KEY,
    OptimizerConfig,
    buffer_from_keras_momentum,
    keras_adam_epsilon,
    keras_momentum_from_buffer,
    keras_momentum_rescale,
    state_key,
)


class Trainer:
    """A model and its optimizer (``keras.optimizers.SGD`` / ``AdamW``), stepped with a given learning rate.

    Example:
        >>> from resnet_spec.optim import OptimizerConfig
        >>> t = Trainer(create_model("resnet18", stem="cifar", num_classes=10), OptimizerConfig("sgd", lr=0.1))
    """

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu") -> None:
        self.model, self.config, self.device = model, config, keras_device(device)
        state = native_state(model)
        self.entries = [ne for ne in native_table(model.spec, FRAMEWORK) if ne.entry.trainable]
        self.variables = [state[ne.key] for ne in self.entries]
        self.lr = np.float64(config.lr)
        # Hyperparameters as numpy float64 and the rate as a callable: Keras casts a Python float through a
        # float32 tensor (TensorFlow's default) and keeps a float rate as a float32 variable, so in float64
        # runs momentum 0.9 became 0.8999999762 and the rate was rounded.
        f64 = np.float64
        if config.kind == "sgd":  # L2 goes into the gradient (Keras' own weight_decay is decoupled)
            self.optimizer: keras.optimizers.Optimizer = keras.optimizers.SGD(
                learning_rate=lambda: self.lr, momentum=f64(config.momentum)
            )
        else:
            self.optimizer = keras.optimizers.AdamW(
                learning_rate=lambda: self.lr, weight_decay=f64(config.weight_decay), beta_1=f64(config.betas[0]),
                beta_2=f64(config.betas[1]), epsilon=f64(config.eps),
            )  # fmt: skip
        with keras.device(self.device):
            self.optimizer.build(self.variables)
        self.lr_last: float | None = None  # the rate Keras' SGD momentum is scaled by (m = -lr * v)
        self.steps = 0

    def _slots(self) -> dict[str, list[keras.Variable]]:
        if self.config.kind == "sgd":
            return {"momentum_buffer": self.optimizer.momentums}
        return {"exp_avg": self.optimizer._momentums, "exp_avg_sq": self.optimizer._velocities}

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> dict[str, float]:
        """One train-mode step on cross-entropy at learning rate ``lr``; the loss and the gradient norm."""
        channels_last = self.model.data_format == "channels_last"
        inp = nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x)
        with keras.device(self.device):
            if self.config.kind == "sgd" and self.lr_last is not None and lr != self.lr_last:
                factor = keras_momentum_rescale(lr, self.lr_last)  # torch's form across a rate change
                for m in self.optimizer.momentums:
                    m.assign(m * factor)
            if self.config.kind == "adamw":  # torch's eps sits beside sqrt(v_hat), Keras' beside sqrt(v)
                self.optimizer.epsilon = np.float64(
                    keras_adam_epsilon(self.config.eps, self.config.betas[1], self.steps + 1)
                )
            self.lr = np.float64(lr)
            loss, grads = self.loss_and_grads(inp, labels)
            grad_norm = float(np.sqrt(sum(float(np.sum(np.square(keras.ops.convert_to_numpy(g), dtype=np.float64)))
                                          for g in grads)))  # fmt: skip
            if self.config.kind == "sgd" and self.config.weight_decay:
                wd = np.float64(self.config.weight_decay)
                grads = [g + wd * v for g, v in zip(grads, self.variables, strict=True)]
            self.optimizer.apply(grads, self.variables)
        self.lr_last = lr
        self.steps += 1
        return {"loss": float(keras.ops.convert_to_numpy(loss)), "grad_norm": grad_norm}

    def loss_and_grads(self, inp: np.ndarray, labels: np.ndarray) -> tuple:
        """The train-mode loss and the gradients of the trainable variables (a data-parallel trainer shards
        the batch over its devices first)."""
        _logits, loss, _input_grad, grads = loss_and_grads(self.model, inp, labels, self.variables)
        return loss, grads

    def export_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as ``{parameter@slot: array}`` in canonical layouts (+ ``@step``)."""
        if self.steps == 0:
            return {STEP_KEY: np.asarray(0.0)} if self.config.kind == "adamw" else {}
        out: dict[str, np.ndarray] = {}
        for slot, held in self._slots().items():
            for ne, var in zip(self.entries, held, strict=True):
                value = keras.ops.convert_to_numpy(var)
                if slot == "momentum_buffer":
                    value = buffer_from_keras_momentum(value, self.lr_last or 1.0)
                out[state_key(ne.entry.name, slot)] = from_native(ne.entry, FRAMEWORK, value)
        if self.config.kind == "adamw":
            out[STEP_KEY] = np.asarray(float(self.steps))
        return out

    def import_state(self, state: Mapping[str, np.ndarray], steps: int) -> None:
        """Load canonical optimizer state (any backend's export) before the next step."""
        self.lr_last = None
        for slot, held in self._slots().items():
            for ne, var in zip(self.entries, held, strict=True):
                key = state_key(ne.entry.name, slot)
                if key not in state:
                    continue
                value = to_native(ne.entry, FRAMEWORK, np.asarray(state[key], dtype=var.dtype))
                if slot == "momentum_buffer":  # m = -lr * v at a reference rate of 1; rescaled at the next step
                    value, self.lr_last = keras_momentum_from_buffer(value, 1.0), 1.0
                var.assign(value)
        self.optimizer.iterations.assign(steps)
        self.steps = steps
