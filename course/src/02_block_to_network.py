# %% [markdown]
# # Lesson 2 — From block to network: stages, strides, and one spec
#
# A ResNet is a *stem* (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four *stages* of residual blocks, and a *head*
# (global average pool, one Linear layer). The models differ only in the block, the number of blocks per stage,
# the widths and where the strides sit. This project keeps all of that in one YAML file,
# `resnet_spec/resnets.yaml`, and builds PyTorch, Paddle and Keras models from it.

# %%
import warnings

warnings.filterwarnings("ignore", message="No ccache found")
import resnet_paddle  # paddle first (before anything that may load TensorFlow)
import resnet_torch
from resnet_spec import count_macs, get_spec, plan_stages

for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
    s = get_spec(name)
    print(f"» {name:<10} block={s.block:<10} blocks per stage={s.depths}  widths={s.widths}")

# %% [markdown]
# ## Where the stride sits: v1, v1.5, V2
#
# Stages 2-4 halve the feature map once. Three conventions exist, and a checkpoint only works in the model whose
# convention it was trained with:
#
# | variant | who | where the stride is |
# |---|---|---|
# | v1 | the paper's Caffe model, keras.applications ResNet50 | first block of a stage, on the first 1x1 conv |
# | v1.5 | torchvision, paddle.vision | first block of a stage, on the 3x3 conv |
# | V2 (pre-activation) | keras.applications ResNet50V2 | **last** block of a stage, 3x3 conv; BN-ReLU first |
#
# The spec's plan says it block by block:

# %%
for name in ("resnet50v1", "resnet50", "resnet50v2"):
    spec = get_spec(name)
    strided = []
    for stage in plan_stages(spec):
        for block in stage:
            where = [f"conv{i + 1}" for i, c in enumerate(block.convs) if c.stride > 1]
            if where:
                strided.append(f"layer{block.stage}.{block.index}:{where[0]}")
    print(f"» {name:<11} stride_on={spec.stride_on:<8} stride_block={spec.stride_block:<5} -> {' '.join(strided)}")

# %% [markdown]
# ## The paper's table, checked
#
# He et al. (2015), Table 1, gives the cost of each model at 224x224 in multiply-adds ("FLOPs" in the paper):
# 1.8, 3.6, 3.8, 7.6 and 11.3 billion. The paper's models are v1; counting the spec's convolutions and the
# Linear layer gives the same figures (v1.5 costs a little more: its stride comes one conv later).

# %%
paper = {"resnet18": 1.8, "resnet34": 3.6, "resnet50v1": 3.8, "resnet101v1": 7.6, "resnet152v1": 11.3}
for name, gmacs in paper.items():
    ours = count_macs(get_spec(name)) / 1e9
    print(f"» {name:<12} paper {gmacs:>5.1f}  spec {ours:>6.2f} GMACs")
    assert abs(ours - gmacs) / gmacs < 0.03, name
print(f"» resnet50 (v1.5): {count_macs(get_spec('resnet50')) / 1e9:.2f} GMACs")

# %% [markdown]
# ## One spec, two frameworks, the same model
#
# Both backends build from the spec, so their parameter names follow their zoos (torchvision, paddle.vision)
# and their counts agree with the spec's, which the YAML declares and a test checks.

# %%
t_model = resnet_torch.create_model("resnet50")
p_model = resnet_paddle.create_model("resnet50")
t_count = sum(p.numel() for p in t_model.parameters())
p_count = sum(int(p.numel()) for p in p_model.parameters() if p.trainable)  # BN statistics are not trainable
print(f"» torch {t_count:,}  paddle {p_count:,}  spec {get_spec('resnet50').expected_trainable:,}")
print("» first keys: torch", list(t_model.state_dict())[:3])
print("»             paddle", list(p_model.state_dict())[:3])
assert t_count == p_count == get_spec("resnet50").expected_trainable
