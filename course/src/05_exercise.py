# %% [raw]
# # ASSIGNMENT CONFIG
# name: resnet_exercise
# run_tests: false
# init_cell: true
# check_all_cell: false
# export_cell: false
# generate: true
# tests:
#   ok_format: false

# %% [markdown]
# # Lesson 5 — Exercise: write the blocks yourself, and let the grader check them
#
# Two questions: the **BasicBlock** of ResNet-18 in PyTorch, and the **Bottleneck** of ResNet-50 in Paddle. The
# networks around them (stem, four stages, head) are given below. Replace each `...` with your code, then run the
# `grader.check(...)` cell under it: those *public* checks test the shapes and the parameter counts. The teacher's
# grader adds *hidden* checks: `check_model` maps your network onto the zoo's ResNet **by running it** (your
# names do not matter), copies the reference weights into it, and compares the stem, every block and the logits.
# You can run it yourself at the end of the notebook: it names the first block that differs and the usual cause.
#
# *For the teacher:* this notebook is built by [otter-grader](https://otter-grader.readthedocs.io) (`make course`):
# `course/05_exercise.ipynb` is the student edition, `course/teacher/05_exercise.ipynb` holds the solutions, and
# `otter assign` writes the autograder that grades a submission with the hidden checks
# (`otter run -a resnet_exercise-autograder_*.zip submission.ipynb`).

# %%
import logging
import warnings

warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
import paddle  # paddle first (before anything that may load TensorFlow)
import torch

logging.getLogger().setLevel(logging.WARNING)  # paddle's import sets the root logger to INFO
from resnet_tools.course import check_model

# %% [markdown]
# ## The networks around your blocks (given)
#
# Both take a `block` class: `ResNet18(BasicBlock)` builds the stem, four stages of 2 blocks (64, 128, 256, 512
# channels, the first block of stages 2-4 with stride 2) and the head; `ResNet50(Bottleneck)` does the same with
# 3, 4, 6, 3 bottlenecks whose output is 4x their width.


# %%
class ResNet18(torch.nn.Module):
    def __init__(self, block, num_classes=1000):
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            torch.nn.BatchNorm2d(64),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(3, 2, 1),
        )
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(torch.nn.Sequential(block(cin, cout, stride), block(cout, cout, 1)))
            cin = cout
        self.stages = torch.nn.Sequential(*stages)
        self.fc = torch.nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ResNet50(paddle.nn.Layer):
    def __init__(self, block, num_classes=1000):
        super().__init__()
        self.stem = paddle.nn.Sequential(
            paddle.nn.Conv2D(3, 64, 7, 2, 3, bias_attr=False),
            paddle.nn.BatchNorm2D(64),
            paddle.nn.ReLU(),
            paddle.nn.MaxPool2D(3, 2, 1),
        )
        stages, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(block(cin, width, stride if i == 0 else 1))
                cin = width * 4
            stages.append(paddle.nn.Sequential(*stage))
        self.stages = paddle.nn.Sequential(*stages)
        self.fc = paddle.nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(paddle.flatten(paddle.nn.functional.adaptive_avg_pool2d(x, 1), 1))


# %% [raw]
# # BEGIN QUESTION
# name: q1_torch_basic_block
# points: 2

# %% [markdown]
# **Question 1 (PyTorch).** Write the `BasicBlock`: a 3x3 conv with the block's stride, BN, ReLU, a 3x3 conv, BN;
# the shortcut is the input itself, or — where the block changes the shape — a 1x1 conv with the block's stride
# followed by a BN; ReLU after the addition. Every conv without a bias (the BN after it has one).

# %% [raw]
# # BEGIN SOLUTION


# %%
class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        identity = x if self.shortcut is None else self.shortcut(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)
        # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS


# %%
def test_basic_block_shapes(BasicBlock, torch):
    x = torch.zeros(2, 64, 28, 36)
    assert BasicBlock(64, 64, 1)(x).shape == (2, 64, 28, 36), "BasicBlock(64, 64, 1): 64 channels, same H and W"
    assert BasicBlock(64, 128, 2)(x).shape == (2, 128, 14, 18), "BasicBlock(64, 128, 2): 128 channels, H and W / 2"


# %%
def test_basic_block_parameters(BasicBlock):
    count = sum(p.numel() for p in BasicBlock(64, 128, 2).parameters())
    assert count == 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * 2 * 128, (
        f"{count} trainable parameters: expected two 3x3 convs and a 1x1 projection without bias, three BNs"
    )


# %%
""" # BEGIN TEST CONFIG
hidden: true
"""  # END TEST CONFIG


def test_resnet18_computes_the_zoo_model(BasicBlock, ResNet18, check_model):
    report = check_model(ResNet18(BasicBlock), "resnet18")
    assert report.passed, report.verdict


# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_paddle_bottleneck
# points: 2

# %% [markdown]
# **Question 2 (Paddle).** Write the `Bottleneck` (残差块 of ResNet-50): a 1x1 conv to `width` channels, BN, ReLU; a
# 3x3 conv with the block's stride (ResNet v1.5, as torchvision and paddle.vision), BN, ReLU; a 1x1 conv to
# `4 * width` channels, BN; the shortcut as in question 1 (a 1x1 conv with the stride + BN where the shape changes);
# ReLU after the addition. In Paddle a conv without a bias is `bias_attr=False`.

# %% [raw]
# # BEGIN SOLUTION


# %%
class Bottleneck(paddle.nn.Layer):
    def __init__(self, cin, width, stride=1):
        super().__init__()
        # BEGIN SOLUTION
        cout = 4 * width
        self.conv1 = paddle.nn.Conv2D(cin, width, 1, bias_attr=False)
        self.bn1 = paddle.nn.BatchNorm2D(width)
        self.conv2 = paddle.nn.Conv2D(width, width, 3, stride, 1, bias_attr=False)
        self.bn2 = paddle.nn.BatchNorm2D(width)
        self.conv3 = paddle.nn.Conv2D(width, cout, 1, bias_attr=False)
        self.bn3 = paddle.nn.BatchNorm2D(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = paddle.nn.Sequential(
                paddle.nn.Conv2D(cin, cout, 1, stride, bias_attr=False), paddle.nn.BatchNorm2D(cout)
            )
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        relu = paddle.nn.functional.relu
        identity = x if self.shortcut is None else self.shortcut(x)
        out = relu(self.bn1(self.conv1(x)))
        out = relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return relu(out + identity)
        # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS


# %%
def test_bottleneck_shapes(Bottleneck, paddle):
    x = paddle.zeros([2, 256, 28, 36])
    assert Bottleneck(256, 64, 1)(x).shape == [2, 256, 28, 36], "Bottleneck(256, 64, 1): 4 x 64 channels, same H, W"
    assert Bottleneck(256, 128, 2)(x).shape == [2, 512, 14, 18], "Bottleneck(256, 128, 2): 4 x 128 channels, H, W / 2"


# %%
def test_bottleneck_parameters(Bottleneck):
    count = sum(int(p.numel()) for p in Bottleneck(256, 128, 2).parameters() if p.trainable)
    want = 256 * 128 + 9 * 128 * 128 + 128 * 512 + 256 * 512 + 2 * (128 + 128 + 512 + 512)
    assert count == want, f"{count} trainable parameters: expected three convs and a 1x1 projection, four BNs"


# %%
""" # BEGIN TEST CONFIG
hidden: true
"""  # END TEST CONFIG


def test_resnet50_computes_the_zoo_model(Bottleneck, ResNet50, check_model):
    report = check_model(ResNet50(Bottleneck), "resnet50")
    assert report.passed, report.verdict


# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Ask the checker yourself
#
# `check_model` is what the hidden checks call. When it fails, it names the first block that differs and the usual
# cause: "the stride sits on the second 3x3 conv", "your shortcut is missing its BN", "the ReLU comes before the
# addition". Lesson 7 shows it on the usual mistakes, and on Keras and Flax NNX models.

# %%
for model, name in ((ResNet18(BasicBlock), "resnet18"), (ResNet50(Bottleneck), "resnet50")):
    print(f"» {name}: {check_model(model, name).verdict}")
