# %% [markdown]
# # Lesson 5 — Exercise: write the Bottleneck yourself, and let the checker grade it
#
# Fill in the Paddle `Bottleneck` below (the three convolutions, their BatchNorms, the shortcut and the
# addition). The network around it (stem, four stages of 3, 4, 6, 3 blocks, head) is given in
# `solutions/resnet50_paddle.py`. Then run the checker cell: it maps your model onto the reference ResNet-50
# **by running it** (your names do not matter), copies the reference weights into it, and compares the stem,
# every block and the logits. It names the first block that differs and the usual cause.
#
# *For a class:* the cell below holds a worked solution; delete the lines marked `TODO` before handing it out.

# %%
import logging
import sys
import warnings

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
from paddle import nn

logging.getLogger().setLevel(logging.WARNING)  # paddle's import sets the root logger to INFO: JAX's chatter would show

sys.path.insert(0, "solutions")  # the course folder's solutions/: the network skeleton and two wrong solutions
from resnet50_paddle import ResNet50

from resnet_tools.course import check_model


# %%
class Bottleneck(nn.Layer):
    expansion = 4

    def __init__(self, in_ch, mid, stride=1):
        super().__init__()
        out = mid * self.expansion
        self.conv_a = nn.Conv2D(in_ch, mid, 1, bias_attr=False)  # TODO 1x1, reduce
        self.bn_a = nn.BatchNorm2D(mid)  # TODO
        self.conv_b = nn.Conv2D(mid, mid, 3, stride=stride, padding=1, bias_attr=False)  # TODO 3x3, the stride
        self.bn_b = nn.BatchNorm2D(mid)  # TODO
        self.conv_c = nn.Conv2D(mid, out, 1, bias_attr=False)  # TODO 1x1, expand x4
        self.bn_c = nn.BatchNorm2D(out)  # TODO
        self.proj = None
        if stride != 1 or in_ch != out:  # TODO the projection shortcut: 1x1 conv + BN
            self.proj = nn.Sequential(nn.Conv2D(in_ch, out, 1, stride=stride, bias_attr=False), nn.BatchNorm2D(out))

    def forward(self, x):
        relu = nn.functional.relu
        shortcut = x if self.proj is None else self.proj(x)  # TODO
        y = relu(self.bn_a(self.conv_a(x)))  # TODO
        y = relu(self.bn_b(self.conv_b(y)))  # TODO
        y = self.bn_c(self.conv_c(y))  # TODO
        return relu(y + shortcut)  # TODO


# %% [markdown]
# ## The checker cell

# %%
report = check_model(ResNet50(block=Bottleneck), "resnet50")
print(report)
assert report.passed

# %% [markdown]
# ## What the checker says about two typical mistakes
#
# `solutions/wrong_shortcut.py` leaves out the BN after the projection; `solutions/wrong_relu.py` applies the
# last ReLU before the addition instead of after it. The checker names the block and the cause:

# %%
import wrong_relu
import wrong_shortcut

for name, build in (("wrong_shortcut", wrong_shortcut.build), ("wrong_relu", wrong_relu.build)):
    verdict = check_model(build(), "resnet50").verdict
    print(f"» {name}: {verdict}")
    assert verdict.startswith("FAIL: stage1 block0 differs")

# %% [markdown]
# ## The same exercise in Keras
#
# The checker takes a Keras model built with the functional API too. Keras has no forward hooks, so it follows the
# model's graph instead: a residual block is what feeds an `Add`. `solutions/resnet18_keras.py` is a CIFAR
# ResNet-18 written as Keras tutorials write it (layers named by Keras: `conv2d_5`, `batch_normalization_3`).
# Its classic mistake is `padding="same"` on a strided convolution: Keras then pads only the bottom and the right
# of the image, where PyTorch and Paddle (and the zoo) pad one pixel on every side.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # no TensorFlow needed here
import resnet18_keras

for name, model in (("resnet18_keras", resnet18_keras.build()),
                    ("with padding='same'", resnet18_keras.build(same_padding=True))):  # fmt: skip
    verdict = check_model(model, "resnet18").verdict
    print(f"» {name}: {verdict}")

# %% [markdown]
# ## The same exercise in Flax NNX
#
# The checker takes a `flax.nnx.Module` too. NNX has no forward hooks either: for the one checked pass, the
# `__call__` of the model's layer classes reports what each layer read and wrote (and is restored after it).
# `solutions/resnet18_flax.py` is a CIFAR ResNet-18 written as NNX tutorials write it (a `BasicBlock` module, the
# blocks in an `nnx.Sequential`, NHWC input). Its classic mistake is NNX's default `padding='SAME'` left on a
# strided conv: TensorFlow's rule, which pads one pixel more at the bottom and right than at the top and left.

# %%
import resnet18_flax

for name, model in (("resnet18_flax", resnet18_flax.build()),
                    ("with padding='SAME'", resnet18_flax.build(same_padding=True))):  # fmt: skip
    verdict = check_model(model, "resnet18").verdict
    print(f"» {name}: {verdict}")

# %% [markdown]
# ## In an autograder
#
# `check_model` is a plain function: a course's test file can grade a submission with it.
#
# ```python
# from resnet_tools.course import check_model
# from submission import ResNet50          # the student's file
#
# def test_resnet50():
#     report = check_model(ResNet50(), "resnet50")
#     assert report.passed, report.verdict  # e.g. "FAIL: stage2 block0 differs: your shortcut is missing its BN"
# ```
#
# It takes a PyTorch `nn.Module` as well (the same checks, the same words), and any zoo model:
# `check_model(model, "resnet18")` for a CIFAR ResNet-18 (the 3x3 stem is read from the model).
