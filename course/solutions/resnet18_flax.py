"""A CIFAR ResNet-18 in Flax NNX (lesson 5's Flax exercise): ``BasicBlock`` is the part a student writes. NNX's
``nnx.Conv`` pads ``'SAME'`` by default, which on a strided conv is TensorFlow's rule (the extra pixel at the bottom
and right only); ``build(same_padding=True)`` plants that mistake. The input is NHWC, as everywhere in JAX."""

from flax import nnx


class BasicBlock(nnx.Module):
    def __init__(self, cin, cout, stride, rngs, same_padding=False):
        pad = "SAME" if same_padding else 1  # 1: one pixel on every side, as PyTorch's padding=1
        self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, padding=pad, use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(cout, epsilon=1e-5, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), padding=1, use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(cout, epsilon=1e-5, rngs=rngs)
        # the projection where the shape changes: 1x1 conv with the block's stride, then BN (one assignment: NNX
        # fixes an attribute's kind, data or static, when it is first set)
        projects = stride != 1 or cin != cout
        self.shortcut = (
            nnx.Sequential(
                nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs),
                nnx.BatchNorm(cout, epsilon=1e-5, rngs=rngs),
            )
            if projects
            else None
        )

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return nnx.relu(y + shortcut)  # ReLU after the addition


class ResNet18(nnx.Module):
    def __init__(self, num_classes=10, same_padding=False, seed=0):
        rngs = nnx.Rngs(seed)
        self.conv1 = nnx.Conv(3, 64, (3, 3), padding=1, use_bias=False, rngs=rngs)  # the CIFAR stem: no max-pool
        self.bn1 = nnx.BatchNorm(64, epsilon=1e-5, rngs=rngs)
        blocks, cin = [], 64
        for i, cout in enumerate((64, 128, 256, 512)):
            blocks += [BasicBlock(cin, cout, 1 if i == 0 else 2, rngs, same_padding), BasicBlock(cout, cout, 1, rngs)]
            cin = cout
        self.blocks = nnx.Sequential(*blocks)
        self.fc = nnx.Linear(512, num_classes, rngs=rngs)

    def __call__(self, x):
        x = self.blocks(nnx.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(axis=(1, 2)))  # global average pooling over H and W (NHWC)


def build(num_classes=10, same_padding=False):
    return ResNet18(num_classes, same_padding)
