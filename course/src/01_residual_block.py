# %% [markdown]
# # Lesson 1 — The residual block (残差块), in PyTorch and in Paddle
#
# A ResNet is a stack of *residual blocks*: each computes a few convolutions and **adds its input back**,
# `out = relu(F(x) + shortcut(x))`. We write the two blocks of the paper — **BasicBlock** (ResNet-18/34) and
# **Bottleneck** (ResNet-50/101/152) — in PyTorch and in PaddlePaddle side by side, run the same input through
# both, and print the shapes and parameter counts the way `paddle.summary` does.
#
# *Set-up:* from a clone of this repository, `make venv` (or `pip install -e ".[torch,paddle]"`); in Colab or
# AI Studio, install `torch`, `paddlepaddle` and this repository the same way. Import paddle **before** anything
# that loads TensorFlow (paddle 3.3 crashes when imported after it).

# %%
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="No ccache found")  # paddle's import-time build notice
import paddle  # paddle first
import torch

torch.manual_seed(0)
paddle.seed(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## BasicBlock: two 3x3 convolutions
#
# | PyTorch | Paddle |
# |---|---|
# | `nn.Conv2d(cin, cout, 3, stride, 1, bias=False)` | `nn.Conv2D(cin, cout, 3, stride, 1, bias_attr=False)` |
# | `nn.BatchNorm2d(c)` | `nn.BatchNorm2D(c)` |
# | `forward(self, x)` | `forward(self, x)` |
#
# The shortcut is the input itself, or — where the block changes the shape (a stride, more channels) — a 1x1
# convolution with the block's stride followed by a BatchNorm (the *projection*).


# %%
class TorchBasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class PaddleBasicBlock(paddle.nn.Layer):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(cin, cout, 3, stride, 1, bias_attr=False)
        self.bn1 = paddle.nn.BatchNorm2D(cout)
        self.conv2 = paddle.nn.Conv2D(cout, cout, 3, 1, 1, bias_attr=False)
        self.bn2 = paddle.nn.BatchNorm2D(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = paddle.nn.Sequential(
                paddle.nn.Conv2D(cin, cout, 1, stride, bias_attr=False), paddle.nn.BatchNorm2D(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = paddle.nn.functional.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return paddle.nn.functional.relu(out + identity)


# %% [markdown]
# ## The same weights, the same input, the same output
#
# The two frameworks name one tensor differently: BatchNorm's running statistics (均值/方差) are
# `running_mean`/`running_var` in PyTorch and `_mean`/`_variance` in Paddle. Conv weights share the layout
# `[out, in, kH, kW]`. We copy PyTorch's weights (with random BN statistics, as a trained model has) into Paddle.


# %%
def randomize_bn(block):
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.normal_(m.bias, 0.0, 0.2)
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return block.eval()


PADDLE_NAME = {"running_mean": "_mean", "running_var": "_variance"}


def torch_to_paddle(t_block, p_block):
    state = {}
    for key, value in t_block.state_dict().items():
        module, _, attr = key.rpartition(".")
        if attr == "num_batches_tracked":  # torch's BN batch counter: no weight, paddle has none
            continue
        state[f"{module}.{PADDLE_NAME.get(attr, attr)}"] = value.numpy()
    missing, unexpected = p_block.set_state_dict(state)
    assert not missing and not unexpected, (missing, unexpected)
    return p_block.eval()


t_block = randomize_bn(TorchBasicBlock(64, 128, stride=2))
p_block = torch_to_paddle(t_block, PaddleBasicBlock(64, 128, stride=2))
x = np.random.default_rng(0).standard_normal((2, 64, 28, 36)).astype("float32")  # batch 2, H != W
with torch.no_grad():
    y_torch = t_block(torch.from_numpy(x)).numpy()
y_paddle = p_block(paddle.to_tensor(x)).numpy()
diff = np.abs(y_torch - y_paddle).max() / np.abs(y_torch).max()
print("» output shape", y_torch.shape, "in both")
print(f"max relative difference torch vs paddle: {diff:.1e}")
assert diff < 1e-5

# %% [markdown]
# ## Bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4)
#
# ResNet-50 and deeper use a cheaper block: a 1x1 conv reduces the channels, a 3x3 conv works at the reduced
# width, a 1x1 conv expands by 4. torchvision and paddle.vision put the stride on the 3x3 conv ("ResNet v1.5");
# the paper's Caffe model put it on the first 1x1 conv (v1). The two versions again differ only in the class names
# of the table above, and `torch.relu` / `paddle.nn.functional.relu`.


# %%
class TorchBottleneck(torch.nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = torch.nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.conv2 = torch.nn.Conv2d(width, width, 3, stride, 1, bias=False)  # v1.5: the stride is here
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.conv3 = torch.nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + identity)


class PaddleBottleneck(paddle.nn.Layer):
    expansion = 4

    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = paddle.nn.Conv2D(cin, width, 1, bias_attr=False)
        self.bn1 = paddle.nn.BatchNorm2D(width)
        self.conv2 = paddle.nn.Conv2D(width, width, 3, stride, 1, bias_attr=False)  # v1.5: the stride is here
        self.bn2 = paddle.nn.BatchNorm2D(width)
        self.conv3 = paddle.nn.Conv2D(width, cout, 1, bias_attr=False)
        self.bn3 = paddle.nn.BatchNorm2D(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = paddle.nn.Sequential(
                paddle.nn.Conv2D(cin, cout, 1, stride, bias_attr=False), paddle.nn.BatchNorm2D(cout)
            )

    def forward(self, x):
        relu = paddle.nn.functional.relu
        identity = x if self.downsample is None else self.downsample(x)
        out = relu(self.bn1(self.conv1(x)))
        out = relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return relu(out + identity)


# %% [markdown]
# The same check as for the BasicBlock: torch's weights and statistics copied into Paddle, the same input, the
# same output.

# %%
t_bottleneck = randomize_bn(TorchBottleneck(256, 128, stride=2))
p_bottleneck = torch_to_paddle(t_bottleneck, PaddleBottleneck(256, 128, stride=2))
x = np.random.default_rng(1).standard_normal((2, 256, 28, 36)).astype("float32")
with torch.no_grad():
    y_torch = t_bottleneck(torch.from_numpy(x)).numpy()
diff = np.abs(y_torch - p_bottleneck(paddle.to_tensor(x)).numpy()).max() / np.abs(y_torch).max()
print("» bottleneck output shape", y_torch.shape, "in both")
print(f"max relative difference torch vs paddle: {diff:.1e}")
assert diff < 1e-5

# %% [markdown]
# ## Shapes and parameter counts, as `paddle.summary` prints them
#
# A BatchNorm holds 4 tensors per channel: the scale and shift are trained, the running mean and variance are
# not (they are *statistics*, updated in training). `paddle.summary` counts both.

# %%
info = paddle.summary(PaddleBottleneck(256, 128, stride=2), input_size=(2, 256, 28, 36))
print("» bottleneck 256 -> 512, stride 2:", int(info["trainable_params"]), "trainable parameters")
basic = sum(p.numel() for p in t_block.parameters())
print("» basic block 64 -> 128, stride 2: trainable parameters", int(basic))
assert info["trainable_params"] == 1 * 256 * 128 + 9 * 128 * 128 + 128 * 512 + 256 * 512 + 2 * (128 + 128 + 512 + 512)

# %% [markdown]
# ## The same table for a whole model: `resnet summary`
#
# The project's `resnet summary` prints the per-layer table for any backend, from the one YAML spec; here the
# first rows of ResNet-50 on Paddle and the totals, which equal torchvision's and paddle.vision's counts.

# %%
from resnet_spec import get_spec
from resnet_tools.zoo.summary import summarize

table = summarize(get_spec("resnet50"), "paddle", (1, 3, 224, 224))
for row in table.rows[:6]:
    print(f"{row.layer:<22} {row.kind:<5} {row.output_shape!s:<20} {row.trainable:>8,}")
print(f"» resnet50: {table.trainable:,} trainable, {table.non_trainable:,} non-trainable (BN statistics)")
assert table.trainable == 25_557_032
