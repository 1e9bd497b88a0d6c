# %% [markdown]
# # Lesson 0 — Why residual connections?
#
# He et al. (2015) start from a puzzle (their Fig. 1): a *plain* network of 56 layers reaches a **higher training
# error** than one of 20 layers. Overfitting cannot explain it (it is the training error), and the deeper network
# could copy the shallower one and set its extra layers to the identity — yet SGD does not find that solution.
# Their fix is the residual block: each block learns a correction `F(x)` and outputs `relu(F(x) + x)`, so the
# identity is the easy default.
#
# Here is that experiment in small, on scikit-learn's 8x8 digits (1,797 images, shipped with the library): three
# networks of 3x3 convolutions with BatchNorm at 16 channels, trained with the same SGD for 200 steps from the
# same seed — plain with 8 layers, plain with 32, and the same 32 layers with shortcuts. (PyTorch only: the point
# here is the architecture, not the framework; the lessons after this one put PyTorch and Paddle side by side.)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images[:, None] / 16.0, dtype=torch.float32)  # [1797, 1, 8, 8], values in [0, 1]
labels = torch.tensor(digits.target)


# %% [markdown]
# ## Two layers of a plain net, or one residual block
#
# The same two convolutions either way; the only difference is `+ x` before the last ReLU.


# %%
class TwoLayers(torch.nn.Module):
    def __init__(self, channels, residual):
        super().__init__()
        self.residual = residual
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + x) if self.residual else torch.relu(out)


def network(layers, residual, channels=16):
    """A stem conv, (layers - 2) / 2 pairs of convs, global pooling and a Linear layer: `layers` weight layers."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, channels, 3, 1, 1, bias=False),
        torch.nn.BatchNorm2d(channels),
        torch.nn.ReLU(),
        *[TwoLayers(channels, residual) for _ in range((layers - 2) // 2)],
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(channels, 10),
    )


# %% [markdown]
# ## Is it vanishing gradients?
#
# The usual guess is that the gradient fades on its way back through many layers. The paper rules it out: with
# BatchNorm the gradients keep a healthy size (Section 4.1). Measured at initialisation, on one batch: the norm of
# the gradient of the loss with respect to the first conv's weights.


# %%
def first_layer_gradient(model):
    loss = torch.nn.functional.cross_entropy(model(images[:256]), labels[:256])
    loss.backward()
    return model[0].weight.grad.norm().item()


gradients = {}
for layers, residual in ((8, False), (32, False), (32, True)):
    torch.manual_seed(0)
    kind = "residual" if residual else "plain"
    gradients[(layers, residual)] = first_layer_gradient(network(layers, residual))
    print(f"» {layers} layers, {kind:<8}: gradient norm at the first conv {gradients[(layers, residual)]:.2e}")
assert gradients[(32, False)] > gradients[(8, False)]  # the deep plain net's first layer gets more gradient, not less

# %% [markdown]
# The deep plain net's first layer receives *more* gradient than the shallow net's, not less. Its trouble is not a
# missing signal but an optimisation problem: SGD does not find good weights for it in the same number of steps.


# %% [markdown]
# ## Training: the loss over the steps


# %%
def train(model, steps=200, batch=64, seed=0):
    """Plain SGD with momentum on random batches; the loss of each step."""
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch,), generator=order)
        loss = torch.nn.functional.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)


curves = {}
for layers, residual in ((8, False), (32, False), (32, True)):
    torch.manual_seed(0)
    name = f"{layers} layers, {'residual' if residual else 'plain'}"
    curves[name] = train(network(layers, residual))

fig, ax = plt.subplots(figsize=(7, 3.5))
for name, losses in curves.items():
    smooth = np.convolve(losses, np.ones(10) / 10, mode="valid")  # a moving mean over 10 steps
    ax.plot(np.arange(len(smooth)) + 10, smooth, label=name)
ax.set(xlabel="SGD step (batch 64)", ylabel="training loss (10-step mean)", yscale="log")
ax.set_title("8x8 digits: the deeper plain net trains worse; with shortcuts it does not")
ax.legend()
plt.show()

final = {name: losses[-50:].mean() for name, losses in curves.items()}
for name, value in final.items():
    print(f"» {name:<20} training loss over the last 50 steps {value:.3f}")
assert final["32 layers, plain"] > 5 * final["8 layers, plain"]  # the degradation: deeper, yet worse in training
assert final["32 layers, residual"] < final["32 layers, plain"] / 5  # the shortcuts remove it

# %% [markdown]
# The deeper plain network is not overfitting — its *training* loss is the high one. With the same layers and
# shortcuts, it trains as well as the shallow one: that is the whole idea of ResNet, and the rest of the course is
# about its blocks. (On ImageNet the paper's 34-layer plain net has 28.54% top-1 error against 27.94% for the
# 18-layer one; with shortcuts, 25.03% against 27.88%: Table 2.)
