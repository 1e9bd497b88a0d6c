"""Numpy-in, numpy-out helpers for tooling and tests (Keras). Activations are NCHW at this boundary."""

from __future__ import annotations

import logging
from collections.abc import Callable

import keras
import numpy as np

from resnet_keras.model import ResNet, feature_layer_names
from resnet_keras.weights import native_state
from resnet_spec.layouts import nchw_to_nhwc, nhwc_to_nchw
from resnet_spec.model_spec import FEATURE_NAMES
from resnet_spec.naming import keras_block_name, native_table, to_canonical
from resnet_spec.plan import block_names, plan_stages
from resnet_spec.spec import check_amp

#: JAX logs "Unable to initialize backend 'tpu'" at INFO; paddle's import sets the root logger to INFO with a
#: handler, so the line would show wherever paddle is loaded too. Chatter, not a finding: kept at WARNING.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


def keras_device(device: str) -> str:
    """The project's device names ("cpu", "gpu") as ``keras.device``'s ("cpu:0", "gpu:0"): this process's first
    device. On JAX over several processes, ``cpu:N`` names a device by its id over every process's devices, so it
    is this process's first one (``cpu:0`` belongs to process 0, and process 1 cannot place anything there)."""
    kind = "gpu" if device in ("gpu", "cuda") else "cpu"
    if keras.backend.backend() == "jax":
        import jax

        if jax.process_count() > 1:
            return f"{kind}:{jax.local_devices(backend=kind)[0].id}"
    return f"{kind}:0"


def _all_outputs(model: ResNet) -> dict[str, keras.KerasTensor]:
    """The symbolic stem/stage outputs by feature name, and the logits."""
    outputs = {k: model.get_layer(v).output for k, v in feature_layer_names(model.spec).items()}
    return {**outputs, "logits": model.outputs[0]}


def _probe(model: ResNet) -> keras.Model:
    """A model sharing ``model``'s layers that returns logits and every feature map (cached)."""
    if getattr(model, "_probe_model", None) is None:
        object.__setattr__(model, "_probe_model", keras.Model(model.input, _all_outputs(model)))  # untracked
    return model._probe_model


def _block_probe(model: ResNet) -> keras.Model:
    """A model sharing ``model``'s layers that returns the stem, every block's output and the logits (cached)."""
    if getattr(model, "_block_probe_model", None) is None:
        stem = feature_layer_names(model.spec)[FEATURE_NAMES[0]]
        plans = [b for stage in plan_stages(model.spec) for b in stage]
        blocks = {f"layer{b.stage}.{b.index}": f"{keras_block_name(b.stage, b.index)}_out" for b in plans}
        outputs = {FEATURE_NAMES[0]: model.get_layer(stem).output}
        outputs |= {n: model.get_layer(layer).output for n, layer in blocks.items()}
        outputs["logits"] = model.outputs[0]
        object.__setattr__(model, "_block_probe_model", keras.Model(model.input, outputs))  # untracked
    return model._block_probe_model


def forward_blocks(model: ResNet, x: np.ndarray, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: the stem, every residual block's output (``layer1.0`` ...) and the
    logits, in forward order, NCHW (the ``conv{s}_block{i}_out`` layers of keras.applications' naming)."""
    channels_last = model.data_format == "channels_last"
    computes_last = model.compute_format == "channels_last"  # feature maps come out in it
    inp = nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x)
    names = [FEATURE_NAMES[0], *block_names(model.spec), "logits"]
    with keras.device(keras_device(device)):
        out = {k: _to_numpy(v) for k, v in _block_probe(model)(inp, training=False).items()}
    return {k: (nhwc_to_nchw(out[k]) if computes_last and out[k].ndim == 4 else out[k]) for k in names}


# --8<-- [start:amp]
def mixed_twin(model: ResNet, amp: str) -> ResNet:
    """The same network built under Keras' ``mixed_<amp>`` policy (float32 variables, ``amp`` compute:
    Keras' equivalent of autocast, a build-time property), holding ``model``'s current weights."""
    from resnet_keras.model import create_model

    twins = getattr(model, "_mixed_twins", None) or {}
    if amp not in twins:
        twins[amp] = create_model(model.spec, dtype=f"mixed_{check_amp(amp)}", data_format=model.data_format)
        object.__setattr__(model, "_mixed_twins", twins)  # untracked: not a sub-model of ``model``
    twins[amp].set_weights(model.get_weights())  # same layers in the same order
    return twins[amp]


# --8<-- [end:amp]


def _to_numpy(t: object) -> np.ndarray:
    """numpy has no bfloat16: low-precision outputs come back as float32 (exactly representable)."""
    out = np.asarray(keras.ops.convert_to_numpy(t))
    return out.astype("float32") if out.dtype.itemsize == 2 and out.dtype.kind != "i" else out


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu", amp: str | None = None
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked.

    ``device`` "cpu" or "gpu" selects the backend's device (``keras.device``); ``amp``
    ("bfloat16" / "float16") runs the model's :func:`mixed_twin`.
    """
    if amp is not None:
        model = mixed_twin(model, amp)
    channels_last = model.data_format == "channels_last"
    computes_last = model.compute_format == "channels_last"  # feature maps come out in it
    inp = nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x)
    with keras.device(keras_device(device)):
        if not features:
            return {"logits": _to_numpy(model(inp, training=False))}
        out = {k: _to_numpy(v) for k, v in _probe(model)(inp, training=False).items()}
    return {k: (nhwc_to_nchw(v) if computes_last and v.ndim == 4 else v) for k, v in out.items()}


# --8<-- [start:fast]
def fast_forward(
    model: ResNet, *, features: bool = False, device: str = "cpu"
) -> tuple[str, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """The fast eval path as (name, run): a compiled ``predict_on_batch`` of a model sharing the layers.

    XLA on TensorFlow (``jit_compile=True``), ``jax.jit`` on JAX; on the torch backend jit_compile
    would mean torch.compile (20-60 s one-off), so it stays eager there. The compiled function reads
    the variables live: later ``import_weights`` calls are seen. The user's model is not compiled.
    ``run`` takes NCHW numpy and returns what :func:`forward_numpy` returns.
    """
    backend = keras.backend.backend()
    runner = keras.Model(model.input, _all_outputs(model) if features else {"logits": model.outputs[0]})
    runner.compile(jit_compile=backend != "torch")
    channels_last = model.data_format == "channels_last"
    computes_last = model.compute_format == "channels_last"  # feature maps come out in it
    where = keras_device(device)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with keras.device(where):
            out = runner.predict_on_batch(nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x))
        return {k: (nhwc_to_nchw(v) if computes_last and v.ndim == 4 else np.asarray(v)) for k, v in out.items()}

    name = {"tensorflow": "XLA (jit_compile) predict_on_batch", "jax": "jax.jit predict_on_batch"}
    return name.get(backend, f"predict_on_batch ({backend}, eager)"), run


# --8<-- [end:fast]


def param_counts(model: ResNet) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) as the framework counts them."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def native_shapes(model: ResNet) -> dict[str, tuple[int, ...]]:
    """Every variable of the model by ``layer/attr`` key with its shape."""
    return {f"{layer.name}/{w.name}": tuple(w.shape) for layer in model.layers for w in layer.weights}


def gpu_available() -> bool:
    """True when Keras' backend (tensorflow, jax or torch) sees a GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def amp_supported(device: str) -> bool:
    """Whether ``forward_numpy(amp=...)`` runs mixed precision on ``device``: Keras' mixed policies run
    on every backend's CPU and GPU."""
    return device == "cpu" or (device in ("gpu", "cuda") and gpu_available())


def release_caches() -> None:
    """Free what the framework keeps between models in a long run: Keras' global graph state and the compiled
    functions of earlier models (measured: a worker that ran the zoo's fast paths held GBs without it)."""
    keras.backend.clear_session(free_memory=True)


def use_all_cores() -> None:
    """Every core for long CPU runs: TensorFlow, JAX and torch take them by default (nothing to do)."""


def set_tf32(enabled: bool) -> None:
    """TF32 in Keras' backend: TF enables it by default, JAX uses it unless precision is 'highest'."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(enabled)
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "default" if enabled else "highest")
    elif backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def train_step_numpy(
    model: ResNet, x: np.ndarray, labels: np.ndarray, *, lr: float, device: str = "cpu"
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One SGD step on cross-entropy in train mode (batch statistics; running stats update).

    Returns the train-mode ``logits``, ``loss``, ``input_grad`` (NCHW) and canonical ``grads``.
    Keras has no backend-neutral autodiff: each backend's own (GradientTape, autograd, jax.grad).
    """
    channels_last = model.data_format == "channels_last"
    inp_np = nchw_to_nhwc(x) if channels_last else np.ascontiguousarray(x)
    state = native_state(model)
    keys = [ne.key for ne in native_table(model.spec, "keras") if ne.entry.trainable]
    variables = [state[k] for k in keys]
    with keras.device(keras_device(device)):
        logits, loss, input_grad, var_grads = loss_and_grads(model, inp_np, labels, variables)
        keras.optimizers.SGD(learning_rate=lr).apply(var_grads, variables)
    input_grad = keras.ops.convert_to_numpy(input_grad)
    grads = {k: keras.ops.convert_to_numpy(g) for k, g in zip(keys, var_grads, strict=True)}
    return {
        "logits": keras.ops.convert_to_numpy(logits),
        "loss": keras.ops.convert_to_numpy(loss).reshape(1),
        "input_grad": nhwc_to_nchw(input_grad) if channels_last else input_grad,
        "grads": to_canonical(model.spec, "keras", grads),
    }


def loss_and_grads(model: ResNet, inp_np: np.ndarray, labels: np.ndarray, variables: list) -> tuple:
    """Train-mode logits, cross-entropy loss, its gradient w.r.t. the input and ``variables``.
    Keras has no backend-neutral autodiff: each backend's own (GradientTape, autograd, jax.grad)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_grads(model, inp_np, labels, variables)
    if backend == "tensorflow":
        import tensorflow as tf

        inp = tf.convert_to_tensor(inp_np)
        with tf.GradientTape() as tape:
            tape.watch(inp)
            logits = model(inp, training=True)
            loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        input_grad, var_grads = tape.gradient(loss, [inp, variables])
        return logits, loss, input_grad, var_grads
    if backend == "torch":
        for v in variables:  # autograd accumulates: each call starts from no gradient
            v.value.grad = None
        inp = keras.ops.convert_to_tensor(inp_np).detach().requires_grad_(True)
        logits = model(inp, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        loss.backward()
        return logits, loss, inp.grad, [v.value.grad for v in variables]
    raise NotImplementedError(f"train-mode steps need keras' tensorflow, jax or torch backend, not {backend}")


def _jax_grads(model: ResNet, inp: np.ndarray, labels: np.ndarray, variables: list) -> tuple:
    """Train-mode forward and gradients on JAX through ``stateless_call``; the BN moving statistics
    the call returns are written back, as a stateful train-mode call does on the other backends."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_fn(params: list, x: jax.Array) -> tuple:
        logits, new_state = model.stateless_call(params, non_trainable, x, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        return loss, (logits, new_state)

    (loss, (logits, new_state)), (param_grads, input_grad) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        trainable, keras.ops.convert_to_tensor(inp)
    )
    for var, value in zip(model.non_trainable_variables, new_state, strict=True):
        var.assign(value)
    by_id = {id(v): g for v, g in zip(model.trainable_variables, param_grads, strict=True)}
    return logits, loss, input_grad, [by_id[id(v)] for v in variables]
