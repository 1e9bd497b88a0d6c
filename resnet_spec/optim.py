"""Optimizer conventions, in one place beside the BN ones (:mod:`resnet_spec.numerics`).

The canonical optimizer state is torch's form, per trainable canonical parameter:

- SGD with momentum ``mu``, coupled L2 weight decay ``wd`` (torch ``SGD``, paddle ``Momentum``)::

      g' = g + wd * p;  v = mu * v + g';  p -= lr * v            state: momentum_buffer = v

  Keras' SGD keeps ``m = mu * m - lr * g; p += m``: the same while ``lr`` is constant, with
  ``m = -lr * v``. When ``lr`` changes the two forms differ (torch scales the whole buffer by the new
  rate, Keras only the new gradient); rescaling ``m`` by ``lr_new / lr_old`` before each Keras step
  makes it torch's form exactly (:func:`keras_momentum_rescale`). Keras' ``weight_decay`` is decoupled,
  so the L2 term is added to the gradient instead (coupled, as torch and paddle do).

- AdamW with betas ``(b1, b2)``, ``eps`` and decoupled weight decay ``wd`` (torch ``AdamW``, paddle
  ``AdamW``, Keras ``AdamW``)::

      p *= 1 - lr * wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t += 1
      p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
                                                   state: exp_avg = m, exp_avg_sq = v, step = t

  paddle puts ``eps * sqrt(1 - b2^t)`` beside ``sqrt(v)``: the same. Keras puts ``eps`` beside
  ``sqrt(v)``: torch's ``eps`` is Keras' ``eps * sqrt(1 - b2^t)``, set before each Keras step
  (:func:`keras_adam_epsilon`).

The numpy functions here are the reference the backends are tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("none", "step", "cosine")
#: Canonical state entries per optimizer, each ``{parameter}@{slot}``; AdamW also has ``@step`` (scalar).
SLOTS = {"sgd": ("momentum_buffer",), "adamw": ("exp_avg", "exp_avg_sq")}


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer, the same in every framework."""

    kind: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9  # SGD
    weight_decay: float = 0.0  # SGD: coupled L2; AdamW: decoupled
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW
    eps: float = 1e-8  # AdamW, torch's placement
    schedule: str = "none"
    total_steps: int = 1  # cosine: steps to anneal over
    step_size: int = 10  # step schedule: steps between decays
    gamma: float = 0.1  # step schedule: decay factor

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.kind!r}; known: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; known: {', '.join(SCHEDULES)}")

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): constant, step decay, or cosine to 0."""
        if self.schedule == "step":
            return self.lr * self.gamma ** (step // self.step_size)
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
        return self.lr


def state_key(param: str, slot: str) -> str:
    return f"{param}@{slot}"


STEP_KEY = "@step"


def keras_momentum_rescale(lr_new: float, lr_old: float) -> float:
    """Factor for Keras' SGD momentum before a step at ``lr_new`` after one at ``lr_old``: torch's form."""
    return lr_new / lr_old


def keras_momentum_from_buffer(buffer: np.ndarray, lr: float) -> np.ndarray:
    """Keras' SGD momentum ``m`` for torch's buffer ``v`` after a step at ``lr`` (``m = -lr * v``)."""
    out: np.ndarray = -lr * buffer
    return out


def buffer_from_keras_momentum(momentum: np.ndarray, lr: float) -> np.ndarray:
    out: np.ndarray = -momentum / lr
    return out


def keras_adam_epsilon(eps: float, beta2: float, step: int) -> float:
    """Keras' epsilon for step ``step`` (1-based) equal to torch's ``eps`` (placed beside sqrt(v_hat))."""
    return eps * math.sqrt(1 - beta2**step)


def reference_step(
    config: OptimizerConfig,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    lr: float,
) -> None:
    """One update in torch's form, in place on ``params`` and ``state`` (canonical keys)."""
    if config.kind == "sgd":
        for k, g in grads.items():
            g = g + config.weight_decay * params[k]
            key = state_key(k, "momentum_buffer")
            state[key] = g.copy() if key not in state else config.momentum * state[key] + g
            params[k] = params[k] - lr * state[key]
        return
    b1, b2 = config.betas
    t = int(state.get(STEP_KEY, np.zeros(())).item()) + 1
    state[STEP_KEY] = np.asarray(float(t))
    for k, g in grads.items():
        m_key, v_key = state_key(k, "exp_avg"), state_key(k, "exp_avg_sq")
        m = b1 * state.get(m_key, np.zeros_like(g)) + (1 - b1) * g
        v = b2 * state.get(v_key, np.zeros_like(g)) + (1 - b2) * g * g
        state[m_key], state[v_key] = m, v
        p = params[k] * (1 - lr * config.weight_decay)
        params[k] = p - lr / (1 - b1**t) * m / (np.sqrt(v) / math.sqrt(1 - b2**t) + config.eps)
