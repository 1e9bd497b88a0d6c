"""``resnet convert --emit-code`` for Flax NNX: a standalone model file (flax only) whose state paths are the ones
this backend writes (Flax's examples/imagenet's), so the converted ``.msgpack`` loads with every key checked."""

from __future__ import annotations

from resnet_spec.emit import architecture, function_name, header, literal
from resnet_spec.model_spec import ModelSpec

BODY = '''
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx, serialization

ARCH = {arch}
RNGS = nnx.Rngs(0)


def conv(c: list) -> nnx.Conv:
    """[in, out, kernel, stride, dilation, groups, bias] -> a conv with symmetric zero padding (NHWC, HWIO)."""
    cin, cout, k, stride, dilation, groups, bias = c
    p = dilation * (k - 1) // 2
    return nnx.Conv(cin, cout, (k, k), strides=stride, padding=[(p, p), (p, p)], kernel_dilation=dilation,
                    feature_group_count=groups, use_bias=bias, rngs=RNGS)


def norm(channels: int) -> nnx.BatchNorm:
    """BN with the spec's eps; Flax's momentum is the weight of the old statistic (1 - torch's)."""
    return nnx.BatchNorm(channels, momentum=1 - ARCH["bn_momentum"], epsilon=ARCH["bn_eps"], use_fast_variance=False,
                         rngs=RNGS)


class Block(nnx.Module):
    """A residual block: its convs (each with a BN, but the last of a pre-activation block), its shortcut."""

    def __init__(self, plan: dict) -> None:
        convs, self.preact, self.n = plan["convs"], ARCH["preact"], len(plan["convs"])
        if self.preact:
            self.norm_preact = norm(convs[0][0])
        for k, c in enumerate(convs):
            setattr(self, f"Conv_{{k}}", conv(c))
            if not (self.preact and k == self.n - 1):
                setattr(self, f"BatchNorm_{{k}}", norm(c[1]))
        self.kind, self.stride, self.pool_first = plan["shortcut"], plan["stride"], plan["shortcut_pool"]
        self.zero_pad = tuple(plan["zero_pad"] or (0, 0))
        if self.kind in ("conv_bn", "conv"):
            self.conv_proj = conv(plan["shortcut_conv"])
            if self.kind == "conv_bn":
                self.norm_proj = norm(plan["shortcut_conv"][1])

    def shortcut(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        s = self.stride
        if self.kind in ("conv_bn", "conv"):
            if self.pool_first and s > 1:  # ResNet-D: a 2x2 average pool (ceil mode, padding not counted) strides
                x = nnx.avg_pool(x, (s, s), strides=(s, s), padding="SAME", count_include_pad=False)
            x = self.conv_proj(x)
            return self.norm_proj(x, use_running_average=not train) if self.kind == "conv_bn" else x
        if self.kind in ("pool", "zero_pad"):  # a 1x1 max-pool's pick; option A pads the new channels with zeros
            x = x[:, ::s, ::s, :]
        if self.kind == "zero_pad":
            x = jnp.pad(x, [(0, 0), (0, 0), (0, 0), self.zero_pad])
        return x

    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        out = nnx.relu(self.norm_preact(x, use_running_average=not train)) if self.preact else x
        identity = self.shortcut(out if self.preact and self.kind == "conv" else x, train)
        for k in range(self.n):
            out = getattr(self, f"Conv_{{k}}")(out)
            if k < self.n - 1 or not self.preact:
                out = getattr(self, f"BatchNorm_{{k}}")(out, use_running_average=not train)
            if k < self.n - 1:
                out = nnx.relu(out)
        return out + identity if self.preact else nnx.relu(out + identity)


class ResNet(nnx.Module):
    """NHWC in, logits out; attribute names are Flax's examples/imagenet's."""

    def __init__(self) -> None:
        stem = ARCH["stem"]
        for i, c in enumerate(stem["deep"]):  # a deep stem: 3x3 convs with BN + ReLU between
            setattr(self, f"conv_init_{{i}}", conv(c))
            setattr(self, f"bn_init_{{i}}", norm(c[1]))
        self.stem = tuple((f"conv_init_{{i}}", f"bn_init_{{i}}") for i in range(len(stem["deep"])))
        self.last = f"conv_init_{{len(stem['deep'])}}" if stem["deep"] else "conv_init"  # the stem's last conv
        setattr(self, self.last, conv(stem["conv"]))
        if stem["norm"]:
            self.bn_init = norm(stem["conv"][1])
        kind = ("PreAct" if ARCH["preact"] else "") + ("Bottleneck" if len(ARCH["blocks"][0]["convs"]) == 3 else "")
        self.blocks = tuple(f"{{kind}}ResNetBlock_{{i}}" for i in range(len(ARCH["blocks"])))  # numbered over the net
        for name, plan in zip(self.blocks, ARCH["blocks"]):
            setattr(self, name, Block(plan))
        if ARCH["post_norm"]:
            self.norm_post = norm(ARCH["features"])
        if ARCH["num_classes"]:
            self.Dense_0 = nnx.Linear(ARCH["features"], ARCH["num_classes"], rngs=RNGS)

    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        stem = ARCH["stem"]
        for c, b in self.stem:
            x = nnx.relu(getattr(self, b)(getattr(self, c)(x), use_running_average=not train))
        x = getattr(self, self.last)(x)
        if stem["norm"]:
            x = self.bn_init(x, use_running_average=not train)
            if stem["relu"]:
                x = nnx.relu(x)
        if stem["pool"] and stem["pool_pad"] == "zero":  # zeros, as keras.applications
            x = nnx.max_pool(jnp.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]), (3, 3), strides=(2, 2), padding="VALID")
        elif stem["pool"]:  # -inf padding
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for name in self.blocks:
            x = getattr(self, name)(x, train)
        if ARCH["post_norm"]:
            x = nnx.relu(self.norm_post(x, use_running_average=not train))
        x = jnp.mean(x, axis=(1, 2))
        return self.Dense_0(x) if ARCH["num_classes"] else x


def {builder}() -> ResNet:
    """The model, with random weights; load the converted ones with load(model, path)."""
    return ResNet()


def load(model: ResNet, path: str) -> ResNet:
    """The converted .msgpack's params and batch_stats into ``model``: every variable must be in the file and every
    tensor of the file must be a variable, with its shape."""
    data = serialization.msgpack_restore(open(path, "rb").read())

    def flat(tree: dict, prefix: tuple = ()) -> dict:
        out = {{}}
        for k, v in tree.items():
            out.update(flat(v, prefix + (k,)) if isinstance(v, dict) else {{prefix + (k,): v}})
        return out

    given = {{**flat(data["params"]), **flat(data["batch_stats"])}}
    held = {{tuple(str(p) for p in path): v for path, v in nnx.state(model).flat_state()}}
    if set(given) != set(held):
        raise ValueError(f"keys differ: missing {{sorted(set(held) - set(given))[:5]}}, "
                         f"unexpected {{sorted(set(given) - set(held))[:5]}}")
    for key, var in held.items():
        if tuple(given[key].shape) != tuple(var.get_value().shape):
            raise ValueError(f"{{'/'.join(key)}}: shape {{given[key].shape}}, the model's {{var.get_value().shape}}")
        var.set_value(jnp.asarray(given[key]))
    return model
'''


def source(spec: ModelSpec, weights: str, assumptions: list[str]) -> str:
    """The model file's text."""
    builder = function_name(spec)
    load = f'    model = load({builder}(), "{weights}")\n    logits = model(x_nhwc)  # eval mode: running statistics'
    return header(spec, "Flax NNX", load, assumptions) + BODY.format(arch=literal(architecture(spec)), builder=builder)
