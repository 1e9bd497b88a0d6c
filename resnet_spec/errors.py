"""Errors raised by the project; each carries one clear line for the user."""


class ResNetError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits with status 2."""


class SpecError(ResNetError, ValueError):
    """The YAML spec, a model name or a build option is invalid."""


class WeightsError(ResNetError, ValueError):
    """Weights do not fit a model: missing/unexpected keys, shape or dtype mismatches."""


class CheckpointError(ResNetError):
    """A checkpoint file cannot be read, written or identified."""


class ImportOrderError(ResNetError, ImportError):
    """paddle was requested after tensorflow was loaded (that combination segfaults)."""


class VerificationError(ResNetError):
    """A converted checkpoint computes different logits than its source (exit status 1)."""

    exit_code = 1
