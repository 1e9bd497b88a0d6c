"""``resnet convert --emit-code`` for PaddlePaddle: a standalone model file (paddle only) whose ``state_dict`` keys
are the ones this backend writes, so ``set_state_dict`` of the converted weights leaves nothing missing."""

from __future__ import annotations

from resnet_spec.emit import architecture, function_name, header, literal
from resnet_spec.model_spec import ModelSpec

BODY = '''
from __future__ import annotations

import paddle
from paddle import nn

ARCH = {arch}


def conv(c: list) -> nn.Conv2D:
    """[in, out, kernel, stride, dilation, groups, bias] -> a conv with symmetric zero padding."""
    cin, cout, k, stride, dilation, groups, bias = c
    pad = dilation * (k - 1) // 2
    return nn.Conv2D(cin, cout, k, stride, pad, dilation, groups, bias_attr=None if bias else False)


def norm(channels: int) -> nn.BatchNorm2D:
    # paddle's momentum is the running average's weight: 1 - torch's (the weight of the new batch)
    return nn.BatchNorm2D(channels, momentum=1.0 - ARCH["bn_momentum"], epsilon=ARCH["bn_eps"])


class ZeroPadShortcut(nn.Layer):
    """Option A: the input subsampled by the stride, its new channels zeros (before, after the input's)."""

    def __init__(self, stride: int, before: int, after: int) -> None:
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, [0, 0, self.before, self.after, 0, 0, 0, 0], mode="constant", value=0.0)


class Block(nn.Layer):
    """A residual block: its convs (each with a BN, but the last of a pre-activation block), its shortcut."""

    def __init__(self, plan: dict) -> None:
        super().__init__()
        convs, self.preact, self.n = plan["convs"], ARCH["preact"], len(plan["convs"])
        if self.preact:
            self.preact_bn = norm(convs[0][0])
        for k, c in enumerate(convs, start=1):
            setattr(self, f"conv{{k}}", conv(c))
            if not (self.preact and k == self.n):
                setattr(self, f"bn{{k}}", norm(c[1]))
        self.relu = nn.ReLU()
        kind = plan["shortcut"]
        self.downsample: nn.Layer | None = None
        if kind == "conv_bn":
            self.downsample = nn.Sequential(conv(plan["shortcut_conv"]), norm(plan["shortcut_conv"][1]))
        elif kind == "conv":
            self.downsample = nn.Sequential(conv(plan["shortcut_conv"]))
        elif kind == "pool":
            self.downsample = nn.MaxPool2D(1, stride=plan["stride"])
        elif kind == "zero_pad":
            self.downsample = ZeroPadShortcut(plan["stride"], *plan["zero_pad"])
        self.on_preact = self.preact and kind == "conv"  # a pre-activation conv shortcut reads the activated input
        self.stride, self.pool_first = plan["stride"], plan["shortcut_pool"]  # ResNet-D: average pool, then conv

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = self.relu(self.preact_bn(x)) if self.preact else x
        source = out if self.on_preact else x
        if self.pool_first:  # a 2x2 average pool (ceil mode, padding not counted) strides, the 1x1 conv does not
            s = self.stride
            source = nn.functional.avg_pool2d(source, s, s, ceil_mode=True, exclusive=True)
        identity = source if self.downsample is None else self.downsample(source)
        for k in range(1, self.n + 1):
            out = getattr(self, f"conv{{k}}")(out)
            if k < self.n or not self.preact:
                out = getattr(self, f"bn{{k}}")(out)
            if k < self.n:
                out = self.relu(out)
        return out + identity if self.preact else self.relu(out + identity)


class ResNet(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        stem = ARCH["stem"]
        if stem["deep"]:  # a deep stem: 3x3 convs with BN + ReLU between, numbered as timm's
            layers: list[nn.Layer] = []
            for c in stem["deep"]:
                layers += [conv(c), norm(c[1]), nn.ReLU()]
            self.conv1: nn.Layer = nn.Sequential(*layers, conv(stem["conv"]))
        else:
            self.conv1 = conv(stem["conv"])
        self.bn1 = norm(stem["conv"][1]) if stem["norm"] else None
        self.relu = nn.ReLU()
        self.maxpool: nn.Layer = nn.Identity()
        if stem["pool"] and stem["pool_pad"] == "zero":
            self.maxpool = nn.Sequential(nn.Pad2D(1), nn.MaxPool2D(3, stride=2))  # zeros, as keras.applications
        elif stem["pool"]:
            self.maxpool = nn.MaxPool2D(3, stride=2, padding=1)  # -inf padding
        for s in range(1, ARCH["stages"] + 1):
            blocks = [Block(b) for b in ARCH["blocks"] if b["name"].split(".")[0] == f"layer{{s}}"]
            self.add_sublayer(f"layer{{s}}", nn.Sequential(*blocks))
        self.post_bn = norm(ARCH["features"]) if ARCH["post_norm"] else None
        self.fc = nn.Linear(ARCH["features"], ARCH["num_classes"]) if ARCH["num_classes"] else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.bn1(x)
            if ARCH["stem"]["relu"]:
                x = self.relu(x)
        x = self.maxpool(x)
        for s in range(1, ARCH["stages"] + 1):
            x = getattr(self, f"layer{{s}}")(x)
        if self.post_bn is not None:
            x = self.relu(self.post_bn(x))
        x = x.mean([2, 3])
        return x if self.fc is None else self.fc(x)


def {builder}() -> ResNet:
    """The model, with random weights; load the converted ones with set_state_dict (nothing missing)."""
    return ResNet()
'''


def source(spec: ModelSpec, weights: str, assumptions: list[str]) -> str:
    """The model file's text."""
    builder = function_name(spec)
    load = (
        f"    model = {builder}()\n"
        f'    missing, unexpected = model.set_state_dict(paddle.load("{weights}"))  # both empty\n'
        f"    model.eval()"
    )
    return header(spec, "PaddlePaddle", load, assumptions) + BODY.format(
        arch=literal(architecture(spec)), builder=builder
    )
