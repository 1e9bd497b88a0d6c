"""Framework-free core: the YAML zoo, its schema, block plans, canonical names and layouts.

No deep-learning framework is imported here.

Example:
    >>> from resnet_spec import get_spec, count_params
    >>> count_params(get_spec("resnet50"))
    (25557032, 53120)
"""

from resnet_spec.errors import CheckpointError, ImportOrderError, ResNetError, SpecError, WeightsError
from resnet_spec.model_spec import FEATURE_NAMES, ModelSpec
from resnet_spec.params import ParamEntry, canonical_table, count_params
from resnet_spec.plan import BlockPlan, ConvPlan, feature_channels, plan_stages, stem_conv
from resnet_spec.shapes import count_macs, feature_shapes, logits_shape
from resnet_spec.spec import OVERRIDES, apply_overrides, get_spec, list_models, load_zoo

__all__ = [
    "FEATURE_NAMES",
    "OVERRIDES",
    "BlockPlan",
    "CheckpointError",
    "ConvPlan",
    "ImportOrderError",
    "ModelSpec",
    "ParamEntry",
    "ResNetError",
    "SpecError",
    "WeightsError",
    "apply_overrides",
    "canonical_table",
    "count_macs",
    "count_params",
    "feature_channels",
    "feature_shapes",
    "get_spec",
    "list_models",
    "load_zoo",
    "logits_shape",
    "plan_stages",
    "stem_conv",
]
