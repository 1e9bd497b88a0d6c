# %% [markdown]
# # Lesson 6 — The everyday workflow, side by side: data, the training loop, evaluation, saving
#
# Lesson 4 compared single steps through this project's helpers. Here is the loop you write every day, in PyTorch
# and in Paddle, cell for cell: a `Dataset` and a `DataLoader`, `train()` / `eval()`, the optimizer's
# `zero_grad` / `clear_grad`, `backward`, `step`, a learning-rate schedule, evaluation without gradients, and
# `torch.save` / `paddle.save`. Both train the same ResNet-18 (CIFAR stem) from the same initial weights on
# scikit-learn's handwritten digits, to an accuracy; then each framework reads the other's file.

# %%
import os
import warnings

THREADS = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())  # read before paddle's import sets it to 1

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track")
import numpy as np
import paddle  # paddle before anything that loads TensorFlow
import torch
from sklearn.datasets import load_digits

import resnet_paddle
import resnet_torch
from resnet_spec import get_spec

torch.manual_seed(0)
paddle.seed(0)
torch.set_num_threads(THREADS)  # torch's default: every core
paddle.base.core.set_num_threads(THREADS)  # paddle's import sets OMP_NUM_THREADS=1: one core unless told

# %% [markdown]
# ## Data: a `Dataset` and a `DataLoader` in each framework
#
# The two APIs are the same shape: a class with `__getitem__` and `__len__`, and a loader that batches and
# shuffles it. The digits are 8x8 grey images, repeated to 3 channels (the CIFAR stem keeps 8x8 through stage 1).

# %%
digits = load_digits()
images = np.repeat(digits.images[:, None] / 16.0, 3, axis=1).astype("float32")  # N x 3 x 8 x 8
labels = digits.target.astype("int64")
order = np.random.default_rng(0).permutation(len(labels))
train_idx, test_idx = order[:1400], order[1400:]  # 1,400 to train on, 397 held out


class TorchDigits(torch.utils.data.Dataset):
    def __init__(self, idx):
        self.x, self.y = torch.from_numpy(images[idx]), torch.from_numpy(labels[idx])

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.y)


class PaddleDigits(paddle.io.Dataset):
    def __init__(self, idx):
        self.x, self.y = images[idx], labels[idx]

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.y)


torch_train = torch.utils.data.DataLoader(TorchDigits(train_idx), batch_size=64, shuffle=True)
torch_test = torch.utils.data.DataLoader(TorchDigits(test_idx), batch_size=200)
paddle_train = paddle.io.DataLoader(PaddleDigits(train_idx), batch_size=64, shuffle=True)
paddle_test = paddle.io.DataLoader(PaddleDigits(test_idx), batch_size=200)
xb, yb = next(iter(torch_train))
print("» torch batch:", tuple(xb.shape), xb.dtype, "| paddle batch:", next(iter(paddle_train))[0].shape)

# %% [markdown]
# ## The same model, the same start
#
# Both models are built from the project's spec. Paddle's gets torch's initial weights (torchvision's He init),
# so the two curves start from the same point.

# %%
spec = get_spec("resnet18", num_classes=10, stem="cifar")  # 3x3 stem conv, no max-pool: for small images
torch_model = resnet_torch.create_model(spec)
paddle_model = resnet_paddle.import_weights(resnet_paddle.create_model(spec), resnet_torch.export_weights(torch_model))

# %% [markdown]
# ## The training loop
#
# | step | PyTorch | Paddle |
# |---|---|---|
# | train mode (BN uses batch statistics) | `model.train()` | `model.train()` |
# | clear the gradients | `opt.zero_grad()` | `opt.clear_grad()` |
# | loss, gradients | `loss.backward()` | `loss.backward()` |
# | update | `opt.step()` | `opt.step()` |
# | next learning rate | `sched.step()` | `sched.step()` |
#
# Both use AdamW with a cosine schedule. Paddle's optimizer takes the schedule as its `learning_rate` and the
# parameters as `parameters=`; torch's takes the parameters first and the schedule wraps the optimizer.

# %%
EPOCHS = 2  # paddle's eager training is most of this lesson's time on a CPU
steps = EPOCHS * len(torch_train)

opt_t = torch.optim.AdamW(torch_model.parameters(), lr=3e-3, weight_decay=0.01)
sched_t = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, T_max=steps)
loss_t = []
for _epoch in range(EPOCHS):
    torch_model.train()
    for x, y in torch_train:
        opt_t.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch_model(x), y)
        loss.backward()
        opt_t.step()
        sched_t.step()
        loss_t.append(loss.item())

# %%
sched_p = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=3e-3, T_max=steps)
opt_p = paddle.optimizer.AdamW(learning_rate=sched_p, parameters=paddle_model.parameters(), weight_decay=0.01)
loss_p = []
for _epoch in range(EPOCHS):
    paddle_model.train()
    for x, y in paddle_train:
        opt_p.clear_grad()
        loss = paddle.nn.functional.cross_entropy(paddle_model(x), y)
        loss.backward()
        opt_p.step()
        sched_p.step()
        loss_p.append(float(loss))
print(f"» {steps} steps each; last loss torch {loss_t[-1]:.3f}, paddle {loss_p[-1]:.3f}")

# %% [markdown]
# ## Evaluation: eval mode, no gradients

# %%


def accuracy_torch(model, loader):
    model.eval()  # BN on its running statistics
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return hits / len(loader.dataset)


def accuracy_paddle(model, loader):
    model.eval()
    with paddle.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return hits / len(loader.dataset)


acc_t, acc_p = accuracy_torch(torch_model, torch_test), accuracy_paddle(paddle_model, paddle_test)
print(f"» held-out top-1: torch {acc_t:.1%}, paddle {acc_p:.1%}")
assert acc_t > 0.9 and acc_p > 0.9

# %% [markdown]
# ## The two curves
#
# Same start, same recipe, different shuffles and float32 rounding: the curves are close, not equal (lesson 4
# shows that in float64 and with the same batches they agree to ~1e-10).

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(loss_t, label="PyTorch")
ax.plot(loss_p, label="Paddle")
ax.set_xlabel("step")
ax.set_ylabel("training loss (cross-entropy)")
ax.set_yscale("log")
ax.legend()
plt.show()

# %% [markdown]
# ## Saving and loading, then reading each other's files
#
# `torch.save(model.state_dict(), ...)` and `paddle.save(model.state_dict(), ...)` are the everyday way to keep
# weights; `load_state_dict` / `set_state_dict` bring them back. The names and layouts differ (paddle's BN
# statistics are `_mean` / `_variance`, its Linear weight is `[in, out]`), so each framework reads the other's
# file through this project: `resnet convert` (here its library function) maps and transposes.

# %%
import tempfile
from pathlib import Path

from resnet_tools.checkpoints.convert import convert

folder = Path(tempfile.mkdtemp())
torch.save(torch_model.state_dict(), folder / "digits.pth")
paddle.save(paddle_model.state_dict(), str(folder / "digits.pdparams"))

again_t = resnet_torch.create_model(spec)
again_t.load_state_dict(torch.load(folder / "digits.pth"))
again_p = resnet_paddle.create_model(spec)
again_p.set_state_dict(paddle.load(str(folder / "digits.pdparams")))
print(f"» reloaded: torch {accuracy_torch(again_t, torch_test):.1%}, "
      f"paddle {accuracy_paddle(again_p, paddle_test):.1%}")  # fmt: skip

convert(folder / "digits.pth", folder / "from_torch.pdparams")  # torch's file, read by paddle
convert(folder / "digits.pdparams", folder / "from_paddle.pth")  # paddle's file, read by torch
crossed_p = resnet_paddle.create_model(spec)
crossed_p.set_state_dict(paddle.load(str(folder / "from_torch.pdparams")))
crossed_t = resnet_torch.create_model(spec)
crossed_t.load_state_dict(torch.load(folder / "from_paddle.pth"))
acc_tp, acc_pt = accuracy_paddle(crossed_p, paddle_test), accuracy_torch(crossed_t, torch_test)
print(f"» torch's weights in paddle: {acc_tp:.1%} (torch: {acc_t:.1%}); "
      f"paddle's weights in torch: {acc_pt:.1%} (paddle: {acc_p:.1%})")  # fmt: skip
assert acc_tp == acc_t and acc_pt == acc_p
