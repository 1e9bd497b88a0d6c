# %% [markdown]
# # Lesson 7 — The checker: the usual mistakes, and ResNets in Keras and Flax NNX
#
# Lesson 5's hidden checks call `check_model(model, "resnet50")`. It maps a model onto the zoo's ResNet **by
# running it** (the student's names do not matter), copies the reference weights into it, and compares the stem,
# every block and the logits. This lesson shows what it says when a block is wrong, and that it takes a Keras
# functional model and a Flax NNX module as well as a PyTorch or Paddle one.

# %%
import logging
import sys
import warnings

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
import paddle  # noqa: F401  (paddle first, before anything that may load TensorFlow)

logging.getLogger().setLevel(logging.WARNING)  # paddle's import sets the root logger to INFO: JAX's chatter would show

from resnet_tools.course import check_model

sys.path.insert(0, "solutions")  # the course folder's solutions/: a worked ResNet-50 and two wrong ones

# %% [markdown]
# ## What the checker says about two typical mistakes
#
# `solutions/resnet50_paddle.py` is a worked ResNet-50 with names of its own; `solutions/wrong_shortcut.py` leaves
# out the BN after the projection; `solutions/wrong_relu.py` applies the last ReLU before the addition instead of
# after it. The checker names the block and the cause:

# %%
import resnet50_paddle
import wrong_relu
import wrong_shortcut

print(f"» resnet50_paddle: {check_model(resnet50_paddle.ResNet50(), 'resnet50').verdict}")
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
# `check_model` is a plain function. Lesson 5 grades with it through otter-grader (its hidden checks are one
# assertion each); a course's own test file can do the same:
#
# ```python
# from resnet_tools.course import check_model
# from submission import ResNet50          # the student's file
#
# def test_resnet50():
#     report = check_model(ResNet50(), "resnet50")
#     assert report.passed, report.verdict  # e.g. "FAIL: stage1 block0 differs: your shortcut is missing its BN"
# ```
#
# It takes any zoo model: `check_model(model, "resnet18")` for a CIFAR ResNet-18 (the 3x3 stem is read from the
# model), and a named variant: `check_model(model, "resnet18", variant="d2l")` holds d2l.ai's ResNet-18 to the
# book's own choices (a bias on every conv, a 1x1 projection without BN).
