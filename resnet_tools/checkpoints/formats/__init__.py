"""Checkpoint formats: read into canonical weights, write from canonical weights. One module per format
(``canonical``: .safetensors and .npz; ``pth``; ``pdparams``; ``keras``), what they share in ``base``, and the
registry that picks one by name, extension or content.

Canonical files (.safetensors, .npz), .pdparams and .weights.h5 are read and written with numpy,
pickle (restricted) and h5py: no framework is imported. Only .pth imports torch, lazily.
"""

from resnet_tools.checkpoints.formats.base import (
    FORMAT_VERSION,
    KEY_PREFIXES,
    OPTIMIZER_PREFIX,
    PRODUCER,
    PROVENANCE_KEYS,
    TORCH_WRAPPERS,
    TRAINING_KEY,
    Checkpoint,
    Container,
    Format,
    unwrap_state,
)
from resnet_tools.checkpoints.formats.canonical import SAFETENSORS_DTYPES
from resnet_tools.checkpoints.formats.pdparams import read_paddle, write_pickled_state
from resnet_tools.checkpoints.formats.registry import (
    FORMATS,
    format_for,
    is_orbax_folder,
    nonfinite,
    read_checkpoint,
    shapes_of,
    sniff,
    weights_dtype,
    write_checkpoint,
)

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "KEY_PREFIXES",
    "OPTIMIZER_PREFIX",
    "PRODUCER",
    "PROVENANCE_KEYS",
    "SAFETENSORS_DTYPES",
    "TORCH_WRAPPERS",
    "TRAINING_KEY",
    "Checkpoint",
    "Container",
    "Format",
    "format_for",
    "is_orbax_folder",
    "nonfinite",
    "read_checkpoint",
    "read_paddle",
    "shapes_of",
    "sniff",
    "unwrap_state",
    "weights_dtype",
    "write_checkpoint",
    "write_pickled_state",
]
