# %% [markdown]
# # Lesson 3 — Moving weights across frameworks: each convention fails first, then is fixed
#
# The same ResNet in PyTorch and Paddle computes the same function, but the frameworks disagree on four
# conventions. Copy a checkpoint naively and each one breaks the model — sometimes silently. Here each is
# shown failing, then fixed, and at the end a whole ResNet-50 is moved with all four handled.

# %%
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras on JAX here: no TensorFlow needed for lesson 3
os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track")
import numpy as np
import paddle  # paddle first
import torch

rng = np.random.default_rng(0)
torch.manual_seed(0)
paddle.seed(0)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(a).max())


# %% [markdown]
# ## 1. Linear: `[out, in]` in PyTorch, `[in, out]` in Paddle and Keras
#
# `torch.nn.Linear(512, 512).weight` is `[out, in]`; `paddle.nn.Linear(512, 512).weight` is `[in, out]`.
# With a square layer the shapes fit either way, so a copy without the transpose loads without a word —
# and computes something else.

# %%
t_fc = torch.nn.Linear(512, 512)
p_fc = paddle.nn.Linear(512, 512)
x = rng.standard_normal((2, 512)).astype("float32")
with torch.no_grad():
    want = t_fc(torch.from_numpy(x)).numpy()

p_fc.set_state_dict({"weight": t_fc.weight.detach().numpy(), "bias": t_fc.bias.detach().numpy()})
wrong = rel(want, p_fc(paddle.to_tensor(x)).numpy())
p_fc.set_state_dict({"weight": t_fc.weight.detach().numpy().T, "bias": t_fc.bias.detach().numpy()})
fixed = rel(want, p_fc(paddle.to_tensor(x)).numpy())
print(f"» Linear copied as is: off by {wrong:.2f} (relative); transposed: {fixed:.1e}")
assert wrong > 0.5 and fixed < 1e-5

# %% [markdown]
# ## 2. BatchNorm momentum: 0.1 in PyTorch is 0.9 in Paddle
#
# In training, BN keeps running averages of the batch mean and variance (均值/方差). PyTorch's `momentum` is the
# weight of the **new batch**: `running = 0.9 * running + 0.1 * batch` for `momentum=0.1`. Paddle's (and Keras')
# is the weight of the **running average**: the same update is `momentum=0.9`. Copying the number flips it.

# %%
xb = rng.standard_normal((8, 4, 5, 6)).astype("float32") * 2 + 1
t_bn = torch.nn.BatchNorm2d(4, momentum=0.1).train()
t_bn(torch.from_numpy(xb))
for momentum in (0.1, 0.9):
    p_bn = paddle.nn.BatchNorm2D(4, momentum=momentum)
    p_bn.train()
    p_bn(paddle.to_tensor(xb))
    off = rel(t_bn.running_mean.numpy(), p_bn._mean.numpy())
    print(f"» paddle momentum={momentum}: running mean off by {off:.1e}")
assert off < 1e-6

# %% [markdown]
# ## 3. The running variance: unbiased in PyTorch, biased in Paddle and Keras
#
# Even with the momentum right, the running *variance* differs after a training step: PyTorch averages in the
# unbiased batch variance (divided by n - 1), Paddle and Keras the biased one (divided by n), with n = N·H·W per
# channel. `resnet_spec.numerics` translates one into the other — the one place the project handles it.

# %%
from resnet_spec.numerics import torch_running_var_as_biased

n = xb.shape[0] * xb.shape[2] * xb.shape[3]
p_bn = paddle.nn.BatchNorm2D(4, momentum=0.9)
p_bn.train()
p_bn(paddle.to_tensor(xb))
raw = rel(p_bn._variance.numpy(), t_bn.running_var.numpy())
translated = torch_running_var_as_biased(t_bn.running_var.numpy(), np.ones(4, "float32"), 0.1, n)
print(f"» n = {n}: running variance off by {raw:.1e} as is, {rel(p_bn._variance.numpy(), translated):.1e} translated")
assert raw > 1e-3 and rel(p_bn._variance.numpy(), translated) < 1e-6

# %% [markdown]
# ## 4. Keras' `padding="same"` at stride 2 is not PyTorch's `padding=1`
#
# A 3x3 conv with stride 2 on an even-sized input: PyTorch pads one row and column on **each** side; Keras'
# `"same"` pads only at the **bottom and right**. Same weights, shifted windows. keras.applications therefore
# writes `ZeroPadding2D(1)` then a `"valid"` conv; so do we in `resnet_keras`.

# %%
import keras

img = rng.standard_normal((1, 8, 10, 3)).astype("float32")  # NHWC for Keras
kernel = rng.standard_normal((3, 3, 3, 4)).astype("float32")  # HWIO
t_conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
with torch.no_grad():
    t_conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    want = t_conv(torch.from_numpy(img.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
same = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)
valid = keras.Sequential([keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(4, 3, strides=2, use_bias=False)])
same.build(img.shape)
same.set_weights([kernel])
valid.build(img.shape)
valid.set_weights([kernel])
off_same = rel(want, keras.ops.convert_to_numpy(same(img)))
off_valid = rel(want, keras.ops.convert_to_numpy(valid(img)))
print(f"» Keras 'same': off by {off_same:.2f}; ZeroPadding2D(1) + 'valid': {off_valid:.1e}")
assert off_same > 0.1 and off_valid < 1e-5

# %% [markdown]
# ## All four at once: a ResNet-50 from PyTorch to Paddle
#
# The project's backends export *canonical* weights (torchvision's names and layouts) and import them with every
# convention above applied. A model with random weights and random BN statistics, moved, gives the same logits;
# `resnet convert model.pth model.pdparams --verify` does the same from the command line.

# %%
import resnet_paddle
import resnet_torch
from resnet_spec import get_spec
from resnet_spec.random_weights import random_weights

weights = random_weights(get_spec("resnet50"), seed=0)  # random BN statistics too
t_model = resnet_torch.import_weights(resnet_torch.create_model("resnet50"), weights)
p_model = resnet_paddle.import_weights(resnet_paddle.create_model("resnet50"), resnet_torch.export_weights(t_model))
x = rng.standard_normal((2, 3, 64, 96)).astype("float32")
logits_t = resnet_torch.forward_numpy(t_model, x)["logits"]
logits_p = resnet_paddle.forward_numpy(p_model, x)["logits"]
print(f"» resnet50 torch -> paddle: logits within {rel(logits_t, logits_p):.1e} (the parity tolerance is 1e-5)")
assert rel(logits_t, logits_p) < 1e-5
