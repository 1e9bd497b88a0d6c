"""``resnet convert --emit-code`` for Keras 3: a standalone model file (keras only) with keras.applications' layer
names, wired as this backend wires its blocks (``Add([shortcut, residual])``), so ``model.load_weights`` reads the
converted ``.weights.h5`` (Keras numbers its layers in that order)."""

from __future__ import annotations

from resnet_spec.emit import architecture, function_name, header, literal
from resnet_spec.model_spec import ModelSpec

BODY = '''
from __future__ import annotations

import keras
from keras import layers

ARCH = {arch}


def conv(c: list, name: str):
    """[in, out, kernel, stride, dilation, groups, bias] -> explicit symmetric zero padding + a 'valid' conv
    (Keras' 'same' pads bottom/right only at stride 2)."""
    _cin, cout, k, stride, dilation, groups, bias = c
    layer = layers.Conv2D(cout, k, strides=stride, padding="valid", dilation_rate=dilation, groups=groups,
                          use_bias=bias, name=f"{{name}}_conv")
    pad = dilation * (k - 1) // 2
    if pad == 0:
        return layer
    padding = layers.ZeroPadding2D(pad, name=f"{{name}}_pad")
    return lambda x: layer(padding(x))


def norm(name: str):
    # Keras' momentum is the running average's weight: 1 - torch's (the weight of the new batch)
    return layers.BatchNormalization(axis=-1, momentum=1.0 - ARCH["bn_momentum"], epsilon=ARCH["bn_eps"],
                                     name=f"{{name}}_bn")


class NegInfPadding2D(layers.Layer):
    """One pixel of -inf around H and W (torch's max-pool padding)."""

    def call(self, x):
        return keras.ops.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=float("-inf"))


class ZeroPadShortcut(layers.Layer):
    """Option A: the input subsampled by the stride, its new channels zeros (before, after the input's)."""

    def __init__(self, stride: int, before: int, after: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride, self.before, self.after = stride, before, after

    def call(self, x):
        s = self.stride
        return keras.ops.pad(x[:, ::s, ::s, :], [(0, 0), (0, 0), (0, 0), (self.before, self.after)])

    def compute_output_shape(self, shape):
        h, w = ((None if d is None else (d + self.stride - 1) // self.stride) for d in shape[1:3])
        return (shape[0], h, w, None if shape[3] is None else shape[3] + self.before + self.after)


def block(x, plan: dict):
    """A residual block, its layers named and wired as keras.applications' (conv2_block1_1_conv, ...)."""
    stage, index = (int(p) for p in plan["name"].removeprefix("layer").split("."))
    name, convs, preact = f"conv{{stage + 1}}_block{{index + 1}}", plan["convs"], ARCH["preact"]
    n = len(convs)
    main = [conv(c, f"{{name}}_{{k}}") for k, c in enumerate(convs, start=1)]
    norms = [norm(f"{{name}}_{{k}}") for k in range(1, n + 1) if not (preact and k == n)]
    kind, shortcut = plan["shortcut"], None
    if kind in ("conv_bn", "conv"):
        sc_conv = conv(plan["shortcut_conv"], f"{{name}}_0")
        sc_norm = norm(f"{{name}}_0") if kind == "conv_bn" else None
        shortcut = (lambda t: sc_norm(sc_conv(t))) if sc_norm else sc_conv
        if plan["shortcut_pool"]:  # ResNet-D: a 2x2 average pool strides ('same': an odd edge's padding not counted)
            s, then = plan["stride"], shortcut
            pool = layers.AveragePooling2D(s, s, "same", name=f"{{name}}_0_pool")
            shortcut = lambda t: then(pool(t))  # noqa: E731
    elif kind == "pool":
        shortcut = layers.MaxPooling2D(1, strides=plan["stride"], name=f"{{name}}_pool")
    elif kind == "zero_pad":
        shortcut = ZeroPadShortcut(plan["stride"], *plan["zero_pad"], name=f"{{name}}_0_zero_pad")
    if preact:
        pre_bn = layers.BatchNormalization(axis=-1, momentum=1.0 - ARCH["bn_momentum"], epsilon=ARCH["bn_eps"],
                                           name=f"{{name}}_preact_bn")
        out = layers.Activation("relu", name=f"{{name}}_preact_relu")(pre_bn(x))
        source = out if kind == "conv" else x  # a pre-activation conv shortcut reads the activated input
    else:
        out, source = x, x
    identity = source if shortcut is None else shortcut(source)
    for k in range(1, n + 1):
        out = main[k - 1](out)
        if k < n or not preact:
            out = norms[k - 1](out)
        if k < n:
            out = layers.Activation("relu", name=f"{{name}}_{{k}}_relu")(out)
    if preact:
        return layers.Add(name=f"{{name}}_out")([identity, out])
    out = layers.Add(name=f"{{name}}_add")([identity, out])
    return layers.Activation("relu", name=f"{{name}}_out")(out)


def {builder}() -> keras.Model:
    """The model (NHWC input of any size), with random weights; load the converted ones with load_weights."""
    stem = ARCH["stem"]
    inputs = keras.Input((None, None, (stem["deep"] or [stem["conv"]])[0][0]), name="input")
    x = inputs
    for i, c in enumerate(stem["deep"], start=1):  # a deep stem: 3x3 convs with BN + ReLU between
        x = layers.Activation("relu", name=f"conv1_{{i}}_relu")(norm(f"conv1_{{i}}")(conv(c, f"conv1_{{i}}")(x)))
    x = conv(stem["conv"], f"conv1_{{len(stem['deep']) + 1}}" if stem["deep"] else "conv1")(x)
    if stem["norm"]:
        x = norm("conv1")(x)
        if stem["relu"]:
            x = layers.Activation("relu", name="conv1_relu")(x)
    if stem["pool"]:
        zero = stem["pool_pad"] == "zero" or (stem["norm"] and stem["relu"])  # after BN + ReLU zeros equal -inf
        pad = layers.ZeroPadding2D(1, name="pool1_pad") if zero else NegInfPadding2D(name="pool1_pad")
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(pad(x))
    for plan in ARCH["blocks"]:
        x = block(x, plan)
    if ARCH["post_norm"]:
        x = layers.Activation("relu", name="post_relu")(norm("post")(x))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if ARCH["num_classes"]:
        x = layers.Dense(ARCH["num_classes"], name="predictions")(x)
    return keras.Model(inputs, x, name="{name}")
'''


def source(spec: ModelSpec, weights: str, assumptions: list[str]) -> str:
    """The model file's text."""
    builder = function_name(spec)
    load = f'    model = {builder}()\n    model.load_weights("{weights}")'
    body = BODY.format(arch=literal(architecture(spec)), builder=builder, name=spec.name)
    return header(spec, "Keras 3", load, assumptions) + body
