"""Hand-written ResNets in the style of tutorials, written here (not the zoo's classes), with their own names:
the checkpoints people hold. Each builder returns a model with random weights, random BN statistics and
biases, in eval mode."""

from __future__ import annotations

from typing import Any

import numpy as np


def randomize_torch(model: Any, seed: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")) or t.ndim == 1:
                t.copy_(torch.randn(t.shape, generator=g) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def randomize_paddle(model: Any, seed: int) -> Any:
    import paddle

    rng = np.random.default_rng(seed)
    for name, t in model.state_dict().items():
        if name.endswith("_variance"):
            t.set_value(rng.uniform(0.5, 2.0, t.shape).astype("float32"))
        elif len(t.shape) == 1:
            base = 1.0 if name.endswith("weight") else 0.0
            t.set_value((rng.normal(0, 0.2, t.shape) + base).astype("float32"))
    model.eval()
    del paddle
    return model


def d2l_stages(residual: Any) -> list[list[Any]]:
    """The four stages of d2l.ai's ResNet-18, built of the book's ``Residual`` class of either edition, as the
    book's ``resnet_block`` builds them (its projection: a strided 1x1 conv in each later stage's first block)."""

    def resnet_block(input_channels: int, num_channels: int, num_residuals: int, first_block: bool = False) -> Any:
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(residual(input_channels, num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(residual(num_channels, num_channels))
        return blk

    return [resnet_block(64, 64, 2, first_block=True), resnet_block(64, 128, 2), resnet_block(128, 256, 2),
            resnet_block(256, 512, 2)]  # fmt: skip


# ---- torch --------------------------------------------------------------------------------------------------


def torch_cifar_resnet18(num_classes: int = 10) -> Any:
    """A CIFAR ResNet-18 in the style of the popular CIFAR repositories: ``shortcut``, ``linear``."""
    import torch.nn.functional as F
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Sequential()
            if stride != 1 or in_planes != planes:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                )

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.in_planes = 64
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.layer1 = self._make_layer(64, 2, 1)
            self.layer2 = self._make_layer(128, 2, 2)
            self.layer3 = self._make_layer(256, 2, 2)
            self.layer4 = self._make_layer(512, 2, 2)
            self.linear = nn.Linear(512, num_classes)

        def _make_layer(self, planes: int, n: int, stride: int) -> Any:
            layers = []
            for s in [stride] + [1] * (n - 1):
                layers.append(BasicBlock(self.in_planes, planes, s))
                self.in_planes = planes
            return nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))

    return randomize_torch(ResNet(), 1)


def torch_opaque_resnet50(num_classes: int = 5, per_block_names: bool = False) -> Any:
    """A ResNet-50 (v1.5) with single-letter names, the shortcut registered before the last conv, and a
    head written as ``Sequential(Dropout, Linear)``. ``per_block_names``: every block names its modules
    differently (``a0``, ``a1``, ...), so no block can teach another."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, width: int, stride: int, tag: str) -> None:
            super().__init__()
            cout = width * 4
            names = [f"{c}{tag}" for c in "abcdstef"]
            self.names = names
            setattr(self, names[0], nn.Conv2d(cin, width, 1, bias=False))
            setattr(self, names[1], nn.BatchNorm2d(width))
            setattr(self, names[2], nn.Conv2d(width, width, 3, stride, 1, bias=False))
            setattr(self, names[3], nn.BatchNorm2d(width))
            self.has_short = stride != 1 or cin != cout
            if self.has_short:
                setattr(self, names[4], nn.Conv2d(cin, cout, 1, stride, bias=False))
                setattr(self, names[5], nn.BatchNorm2d(cout))
            setattr(self, names[6], nn.Conv2d(width, cout, 1, bias=False))
            setattr(self, names[7], nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            a, b, c, d, s, t, e, f = (getattr(self, n, None) for n in self.names)
            y = b(a(x)).relu()
            y = d(c(y)).relu()
            y = f(e(y))
            return (y + (t(s(x)) if self.has_short else x)).relu()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
            blocks, cin, k = [], 64, 0
            for i, (n, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
                for j in range(n):
                    blocks.append(Block(cin, width, 2 if j == 0 and i > 0 else 1, str(k) if per_block_names else ""))
                    cin, k = width * 4, k + 1
            self.r = nn.Sequential(*blocks)
            self.h = nn.Sequential(nn.Dropout(0.5), nn.Linear(2048, num_classes))

        def forward(self, x: Any) -> Any:
            return self.h(self.r(self.s(x)).mean((2, 3)))

    return randomize_torch(Net(), 2)


def torch_keras_style_resnet50v2(num_classes: int = 6, neg_inf_pool: bool = False, head_pool: str = "mean") -> Any:
    """A ResNet50V2 written in torch in keras.applications' layout (``conv1.conv``, ``conv2.blocks.0.preact``,
    ``short``, ``post.bn``, ``post.fc``), without the last conv's and the shortcut's biases. ``neg_inf_pool``:
    the stem max-pool pads with -inf (torch's own padding), where keras.applications pads with zeros.
    ``head_pool="max"``: global max pooling before the classifier (no zoo model does that)."""
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, filters: int, stride: int, conv_shortcut: bool) -> None:
            super().__init__()
            self.preact = nn.Sequential(nn.BatchNorm2d(cin, eps=1.001e-5), nn.ReLU())
            self.short = nn.Conv2d(cin, 4 * filters, 1, stride, bias=False) if conv_shortcut else None
            self.stride = stride
            self.conv1 = nn.Sequential(
                nn.Conv2d(cin, filters, 1, bias=False), nn.BatchNorm2d(filters, eps=1.001e-5), nn.ReLU()
            )
            self.conv2 = nn.Sequential(
                nn.Conv2d(filters, filters, 3, stride, 1, bias=False), nn.BatchNorm2d(filters, eps=1.001e-5), nn.ReLU()
            )
            self.conv3 = nn.Conv2d(filters, 4 * filters, 1, bias=False)

        def forward(self, x: Any) -> Any:
            p = self.preact(x)
            sc = x if self.stride == 1 else F.max_pool2d(x, 1, self.stride)  # keras: a 1x1 max-pool shortcut
            if self.short is not None:
                sc = self.short(p)
            return self.conv3(self.conv2(self.conv1(p))) + sc

    class Stack(nn.Module):
        def __init__(self, cin: int, filters: int, blocks: int, stride: int) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(
                [Block(cin, filters, 1, True)]
                + [Block(4 * filters, filters, 1, False) for _ in range(blocks - 2)]
                + [Block(4 * filters, filters, stride, False)]
            )

        def forward(self, x: Any) -> Any:
            for b in self.blocks:
                x = b(x)
            return x

    class Post(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(2048, eps=1.001e-5)
            self.fc = nn.Linear(2048, num_classes)

        def forward(self, x: Any) -> Any:
            x = F.relu(self.bn(x))
            return self.fc(x.amax((2, 3)) if head_pool == "max" else x.mean((2, 3)))

    class Stem(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 7, 2, 3)

        def forward(self, x: Any) -> Any:
            if neg_inf_pool:
                return F.max_pool2d(self.conv(x), 3, 2, padding=1)
            return F.max_pool2d(F.pad(self.conv(x), (1, 1, 1, 1)), 3, 2)  # keras pads with zeros

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = Stem()
            self.conv2 = Stack(64, 64, 3, 2)
            self.conv3 = Stack(256, 128, 4, 2)
            self.conv4 = Stack(512, 256, 6, 2)
            self.conv5 = Stack(1024, 512, 3, 1)
            self.post = Post()

        def forward(self, x: Any) -> Any:
            return self.post(self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x))))))

    return randomize_torch(Net(), 3)


def torch_timm_style_resnetv2_50(num_classes: int = 7, opaque: bool = False) -> Any:
    """A pre-activation ResNet-50 in timm's resnetv2 layout (timm/models/resnetv2.py, ``resnetv2_50``): ``stem.conv``
    then a -inf padded ``MaxPool2d(3, 2, 1)``; ``stages.N.blocks.M`` of ``PreActBottleneck`` (``downsample.conv`` on
    the pre-activated input registered first, ``norm1`` ``conv1`` ``norm2`` ``conv2`` ``norm3`` ``conv3``), the
    stride in each stage's FIRST block on its 3x3 conv, norms as timm's ``BatchNormAct2d`` (a BatchNorm2d subclass
    with its ReLU inside); ``norm`` after the last stage, then a Linear head (``head.fc``). Same tensors as
    keras.applications' ResNet50V2 (stride in the last block, zero-padded pool), other numbers. ``opaque``: the
    same model under names of one's own (nothing to recognise it by)."""
    from torch import nn

    class BatchNormAct2d(nn.BatchNorm2d):
        def forward(self, x: Any) -> Any:
            return super().forward(x).relu()

    class DownsampleConv(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)

        def forward(self, x: Any) -> Any:
            return self.conv(x)

    class PreActBottleneck(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            mid = cout // 4
            self.downsample = DownsampleConv(cin, cout, stride) if stride != 1 or cin != cout else None
            self.norm1 = BatchNormAct2d(cin)
            self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
            self.norm2 = BatchNormAct2d(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
            self.norm3 = BatchNormAct2d(mid)
            self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)

        def forward(self, x: Any) -> Any:
            x_preact = self.norm1(x)
            shortcut = x if self.downsample is None else self.downsample(x_preact)
            x = self.conv1(x_preact)
            x = self.conv2(self.norm2(x))
            x = self.conv3(self.norm3(x))
            return x + shortcut

    class ResNetStage(nn.Module):
        def __init__(self, cin: int, cout: int, depth: int, stride: int) -> None:
            super().__init__()
            self.blocks = nn.Sequential(
                *(PreActBottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(depth))
            )

        def forward(self, x: Any) -> Any:
            return self.blocks(x)

    class ResNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential()
            self.stem.add_module("conv", nn.Conv2d(3, 64, 7, 2, 3, bias=False))
            self.stem.add_module("pool", nn.MaxPool2d(3, 2, 1))
            stages, cin = [], 64
            for i, (depth, cout) in enumerate(zip((3, 4, 6, 3), (256, 512, 1024, 2048), strict=True)):
                stages.append(ResNetStage(cin, cout, depth, 1 if i == 0 else 2))
                cin = cout
            self.stages = nn.Sequential(*stages)
            self.norm = BatchNormAct2d(2048)
            self.head = nn.Sequential()
            self.head.add_module("fc", nn.Linear(2048, num_classes))

        def forward(self, x: Any) -> Any:
            return self.head(self.norm(self.stages(self.stem(x))).mean((2, 3)))

    class Opaque(nn.Module):  # the same modules under other names: no "stages", "blocks", "norm1"
        def __init__(self, m: ResNetV2) -> None:
            super().__init__()
            self.q, self.w, self.n, self.z = m.stem, nn.Sequential(*(st.blocks for st in m.stages)), m.norm, m.head

        def forward(self, x: Any) -> Any:
            return self.z(self.n(self.w(self.q(x))).mean((2, 3)))

    model = randomize_torch(ResNetV2(), 11)
    return Opaque(model).eval() if opaque else model


def torch_flat_resnet18(num_classes: int = 10) -> Any:
    """A ResNet-18 whose layers all sit in one flat ``nn.ModuleList`` (``layers.0`` ... ``layers.61``), wired by
    index in ``forward``: no module holds a block, so a file of it cannot be cut into blocks by its names."""
    from torch import nn

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)]
            self.plan: list[tuple[int, bool]] = []
            cin = 64
            for i, cout in enumerate((64, 128, 256, 512)):
                for j in range(2):
                    stride = 2 if i > 0 and j == 0 else 1
                    proj = stride != 1 or cin != cout
                    layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                               nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]  # fmt: skip
                    if proj:
                        layers += [nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)]
                    self.plan.append((stride, proj))
                    cin = cout
            layers.append(nn.Linear(512, num_classes))
            self.layers = nn.ModuleList(layers)

        def forward(self, x: Any) -> Any:
            lay = self.layers
            x = nn.functional.max_pool2d(lay[1](lay[0](x)).relu(), 3, 2, 1)
            k = 2
            for _stride, proj in self.plan:
                y = lay[k + 1](lay[k](x)).relu()
                y = lay[k + 3](lay[k + 2](y))
                short = lay[k + 5](lay[k + 4](x)) if proj else x
                k += 6 if proj else 4
                x = (y + short).relu()
            return lay[k](x.mean((2, 3)))

    return randomize_torch(Flat(), 12)


def torch_cifar_resnet_option_a(n: int = 3, num_classes: int = 10, pad: str = "split") -> Any:
    """He et al.'s CIFAR ResNet-(6n+2) as the most copied CIFAR code writes it (``resnet20`` ... ``resnet110``):
    a 3x3 stem of 16 channels, three stages of ``n`` basic blocks (16, 32, 64 channels), option-A shortcuts (the
    input subsampled, its new channels zeros, through a ``LambdaLayer``: no weights), ``linear`` head, and the
    head's ``F.avg_pool2d(out, out.size()[3])``, which pools globally on square images only. ``pad="end"``: the
    zeros after the input's channels (``torch.cat``) instead of ``F.pad``'s planes//4 on each side."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LambdaLayer(nn.Module):
        def __init__(self, lambd: Any) -> None:
            super().__init__()
            self.lambd = lambd

        def forward(self, x: Any) -> Any:
            return self.lambd(x)

    def option_a(planes: int) -> Any:
        if pad == "split":
            return lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)

        def cat(x: Any) -> Any:
            sub = x[:, :, ::2, ::2]
            return torch.cat([sub, sub.new_zeros(sub.shape[0], planes // 2, *sub.shape[2:])], 1)

        return cat

    class BasicBlock(nn.Module):
        def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut: nn.Module = nn.Sequential()
            if stride != 1 or in_planes != planes:
                self.shortcut = LambdaLayer(option_a(planes))

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return F.relu(out)

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.in_planes = 16
            self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.layer1 = self._make_layer(16, n, stride=1)
            self.layer2 = self._make_layer(32, n, stride=2)
            self.layer3 = self._make_layer(64, n, stride=2)
            self.linear = nn.Linear(64, num_classes)

        def _make_layer(self, planes: int, num_blocks: int, stride: int) -> Any:
            layers = []
            for s in [stride] + [1] * (num_blocks - 1):
                layers.append(BasicBlock(self.in_planes, planes, s))
                self.in_planes = planes
            return nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            out = F.avg_pool2d(out, out.size()[3])
            return self.linear(out.view(out.size(0), -1))

    return randomize_torch(ResNet(), 20 + n)


def torch_timm_style_resnet50d(
    num_classes: int = 9, avg_down: bool = True, depths: tuple[int, ...] = (3, 4, 6, 3)
) -> Any:
    """timm's ``resnet50d`` as timm/models/resnet.py builds it (``stem_type='deep'``, ``avg_down=True``): a deep stem
    ``conv1`` = Sequential(conv 3x3/2 3->32, BN, ReLU, conv 32->32, BN, ReLU, conv 32->64), ``bn1``, ReLU, max-pool;
    bottlenecks striding on the 3x3; each projection ``downsample`` = Sequential(AvgPool2d(2, 2, ceil_mode=True,
    count_include_pad=False), conv 1x1, BN) where the block strides (Identity in place of the pool where it does not).
    ``avg_down=False``: timm's ``resnet50c`` (the deep stem, the 1x1 conv strides). ``depths``: fewer blocks for a
    quick test (the stage layout as resnet50's)."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, planes: int, stride: int, downsample: Any) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.act1 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.act2 = nn.ReLU(inplace=True)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.act3 = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x: Any) -> Any:
            shortcut = x if self.downsample is None else self.downsample(x)
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.act2(self.bn2(self.conv2(x)))
            x = self.bn3(self.conv3(x))
            return self.act3(x + shortcut)

    def downsample(cin: int, cout: int, stride: int) -> Any:
        if not avg_down:
            return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, nn.Conv2d(cin, cout, 1, 1, bias=False), nn.BatchNorm2d(cout))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False),
            )  # fmt: skip
            self.bn1 = nn.BatchNorm2d(64)
            self.act1 = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, (depth, planes) in enumerate(zip(depths, (64, 128, 256, 512), strict=True)):
                stride, blocks = (1 if i == 0 else 2), []
                for b in range(depth):
                    s = stride if b == 0 else 1
                    ds = downsample(cin, planes * 4, s) if b == 0 else None
                    blocks.append(Bottleneck(cin, planes, s, ds))
                    cin = planes * 4
                self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.global_pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, num_classes)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.global_pool(x).flatten(1))

    return randomize_torch(ResNet(), 50 + avg_down)


def torch_tutorial_four_blocks(num_classes: int = 10, stem_relu: bool = False) -> Any:
    """A tutorial's small ResNet for 32x32 images: a stem conv + BN *without* ReLU or pool; four residual blocks
    in a ``blocks`` Sequential, each striding 2 on its first 3x3 conv, which keeps its input's width (the second
    widens), a projection (1x1 conv at stride 2 + BN) in every block; global average pool, Linear. Convs keep
    ``nn.Conv2d``'s default bias. ``stem_relu``: its look-alike with a ReLU after the stem's BN."""
    import torch.nn.functional as F
    from torch import nn

    class ResBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cin, 3, 2, 1)
            self.bn1 = nn.BatchNorm2d(cin)
            self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, 2), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 32, 3, 1, 1)
            self.bn = nn.BatchNorm2d(32)
            self.blocks = nn.Sequential(ResBlock(32, 64), ResBlock(64, 128), ResBlock(128, 256), ResBlock(256, 512))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x: Any) -> Any:
            x = self.bn(self.conv(x))
            x = F.relu(x) if stem_relu else x
            x = self.blocks(x)
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return randomize_torch(Net(), 40 + stem_relu)


def torch_d2l_resnet18(num_classes: int = 10, in_channels: int = 1) -> Any:
    """d2l.ai's ResNet-18 ("Dive into Deep Learning", section 8.6, PyTorch edition) as the book writes it:
    ``Residual`` with ``conv1, conv2, conv3`` (the 1x1 projection, no BN) registered before ``bn1, bn2``, a bias
    on every conv, the stages ``b1..b5`` in one ``nn.Sequential``; one input channel (Fashion-MNIST)."""
    from torch import nn
    from torch.nn import functional as F

    class Residual(nn.Module):
        def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
            self.bn1 = nn.BatchNorm2d(num_channels)
            self.bn2 = nn.BatchNorm2d(num_channels)

        def forward(self, x: Any) -> Any:
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.conv3:
                x = self.conv3(x)
            y += x
            return F.relu(y)

    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    b2, b3, b4, b5 = (nn.Sequential(*blocks) for blocks in d2l_stages(Residual))
    net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes))
    return randomize_torch(net, 5)


# ---- paddle -------------------------------------------------------------------------------------------------


def paddle_tutorial_resnet50(num_classes: int = 102) -> Any:
    """A ResNet-50 as popular Paddle tutorials write it: ``conv``, ``bn``, ``residual_block.{i}`` with
    ``conv_bn_block1..3`` (Sequential conv + BN) and ``down_sample_block``, ``fc`` (weight [in, out])."""
    import paddle
    from paddle import nn

    class Bottleneck(nn.Layer):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * 4
            self.conv_bn_block1 = nn.Sequential(
                nn.Conv2D(cin, width, 1, bias_attr=False), nn.BatchNorm2D(width), nn.ReLU()
            )
            self.conv_bn_block2 = nn.Sequential(
                nn.Conv2D(width, width, 3, stride, 1, bias_attr=False), nn.BatchNorm2D(width), nn.ReLU()
            )
            self.conv_bn_block3 = nn.Sequential(nn.Conv2D(width, cout, 1, bias_attr=False), nn.BatchNorm2D(cout))
            self.down_sample_block = None
            if stride != 1 or cin != cout:
                self.down_sample_block = nn.Sequential(
                    nn.Conv2D(cin, cout, 1, stride, bias_attr=False), nn.BatchNorm2D(cout)
                )
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            identity = x if self.down_sample_block is None else self.down_sample_block(x)
            out = self.conv_bn_block3(self.conv_bn_block2(self.conv_bn_block1(x)))
            return self.relu(out + identity)

    class ResNet50(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2D(3, 64, 7, 2, 3, bias_attr=False)
            self.bn = nn.BatchNorm2D(64)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2D(3, 2, 1)
            blocks, cin = [], 64
            for i, (n, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
                for j in range(n):
                    blocks.append(Bottleneck(cin, width, 2 if j == 0 and i > 0 else 1))
                    cin = width * 4
            self.residual_block = nn.Sequential(*blocks)
            self.avgpool = nn.AdaptiveAvgPool2D(1)
            self.fc = nn.Linear(2048, num_classes)

        def forward(self, x: Any) -> Any:
            x = self.pool(self.relu(self.bn(self.conv(x))))
            return self.fc(paddle.flatten(self.avgpool(self.residual_block(x)), 1))

    return randomize_paddle(ResNet50(), 4)


def paddle_d2l_resnet18(num_classes: int = 10, in_channels: int = 1) -> Any:
    """d2l.ai's ResNet-18 in the book's PaddlePaddle edition: the same ``Residual`` (``conv1, conv2, conv3``
    with biases, then ``bn1, bn2``), ``b1..b5`` in one ``nn.Sequential``."""
    from paddle import nn
    from paddle.nn import functional as F

    class Residual(nn.Layer):
        def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2D(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.Conv2D(num_channels, num_channels, kernel_size=3, padding=1)
            self.conv3 = nn.Conv2D(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
            self.bn1 = nn.BatchNorm2D(num_channels, momentum=0.9, epsilon=1e-5)
            self.bn2 = nn.BatchNorm2D(num_channels, momentum=0.9, epsilon=1e-5)

        def forward(self, x: Any) -> Any:
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.conv3:
                x = self.conv3(x)
            return F.relu(y + x)

    b1 = nn.Sequential(
        nn.Conv2D(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2D(64),
        nn.ReLU(),
        nn.MaxPool2D(kernel_size=3, stride=2, padding=1),
    )
    b2, b3, b4, b5 = (nn.Sequential(*blocks) for blocks in d2l_stages(Residual))
    net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2D((1, 1)), nn.Flatten(), nn.Linear(512, num_classes))
    return randomize_paddle(net, 6)


def keras_cifar_resnet18(
    num_classes: int = 10, relu_after_add: bool = True, shortcut_bn: bool = True, same_padding: bool = False
) -> Any:
    """A CIFAR ResNet-18 with Keras' functional API, as Keras tutorials write it: a ``residual_block``
    function, layers named by Keras (``conv2d_7``, ``batch_normalization_3``). The switches plant the
    classroom's mistakes: no ReLU after the addition, a projection without its BN, and ``padding="same"`` on
    the strided convs (TF's 'same' pads a stride-2 3x3 conv on the bottom/right only; the zoo pads 1 all round)."""
    import keras
    from keras import layers

    def conv_bn(x: Any, filters: int, kernel: int, stride: int, bn: bool = True) -> Any:
        if stride > 1 and kernel > 1 and not same_padding:
            x = layers.ZeroPadding2D(kernel // 2)(x)
            x = layers.Conv2D(filters, kernel, stride, padding="valid", use_bias=False)(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x) if bn else x

    def residual_block(x: Any, filters: int, stride: int) -> Any:
        shortcut = x
        y = layers.ReLU()(conv_bn(x, filters, 3, stride))
        y = conv_bn(y, filters, 3, 1)
        if stride != 1 or x.shape[-1] != filters:
            shortcut = conv_bn(x, filters, 1, stride, bn=shortcut_bn)
        y = layers.Add()([y, shortcut])
        return layers.ReLU()(y) if relu_after_add else y

    inputs = keras.Input((None, None, 3))
    x = layers.ReLU()(conv_bn(inputs, 64, 3, 1))
    for i, filters in enumerate((64, 128, 256, 512)):
        x = residual_block(x, filters, 1 if i == 0 else 2)
        x = residual_block(x, filters, 1)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(num_classes)(x))
    rng = np.random.default_rng(3)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


# ---- flax ---------------------------------------------------------------------------------------------------


def flax_tutorial_resnet18(
    num_classes: int = 10, cifar: bool = False, stride_on_conv2: bool = False, same_padding: bool = False
) -> Any:
    """A ResNet-18 as ``flax.nnx`` tutorials write it: a ``BasicBlock`` module (``conv1``/``bn1``/``conv2``/``bn2``, a
    ``shortcut`` ``nnx.Sequential`` or None), stages as ``nnx.Sequential``, the stem's max-pool by
    ``nnx.max_pool``, NHWC. Random weights, random BN statistics and biases, eval mode. ``cifar``: a 3x3 stride-1
    stem without the pool. The switches plant look-alikes with the same weight shapes: the stride on each
    downsampling block's second conv, and ``padding='SAME'`` on the strided convs (TF's rule: bottom/right only)."""
    from flax import nnx

    rngs = nnx.Rngs(0)

    def pad(k: int, stride: int) -> Any:
        return "SAME" if same_padding and stride > 1 else k // 2

    class BasicBlock(nnx.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            s1, s2 = (1, stride) if stride_on_conv2 else (stride, 1)
            self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=s1, padding=pad(3, s1), use_bias=False, rngs=rngs)
            self.bn1 = nnx.BatchNorm(cout, rngs=rngs)
            self.conv2 = nnx.Conv(cout, cout, (3, 3), strides=s2, padding=pad(3, s2), use_bias=False, rngs=rngs)
            self.bn2 = nnx.BatchNorm(cout, rngs=rngs)
            self.shortcut = (
                nnx.Sequential(
                    nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs),
                    nnx.BatchNorm(cout, rngs=rngs),
                )
                if stride != 1 or cin != cout
                else None
            )

        def __call__(self, x: Any) -> Any:
            y = nnx.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return nnx.relu(y + (x if self.shortcut is None else self.shortcut(x)))

    class ResNet18(nnx.Module):
        def __init__(self) -> None:
            k, s = (3, 1) if cifar else (7, 2)
            self.conv1 = nnx.Conv(3, 64, (k, k), strides=s, padding=pad(k, s), use_bias=False, rngs=rngs)
            self.bn1 = nnx.BatchNorm(64, rngs=rngs)
            widths, cin = (64, 128, 256, 512), 64
            for i, w in enumerate(widths):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nnx.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
                cin = w
            self.fc = nnx.Linear(512, num_classes, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            x = nnx.relu(self.bn1(self.conv1(x)))
            if not cifar:
                x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME" if same_padding else ((1, 1), (1, 1)))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(x.mean(axis=(1, 2)))

    model = ResNet18()
    rng = np.random.default_rng(7)
    for path, var in nnx.graph.iter_graph(model):
        if isinstance(var, (nnx.Param, nnx.BatchStat)):
            shape, name = var.get_value().shape, str(path[-1])
            if name == "var":
                value = rng.uniform(0.5, 2.0, shape)
            elif len(shape) == 1:
                value = rng.normal(0, 0.2, shape) + (1.0 if name == "scale" else 0.0)
            else:
                value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
            var.set_value(var.get_value().dtype.type(0) + value.astype(np.float32))
    model.eval()
    return model
