"""Where the CLI prints: rich consoles for stdout and stderr, and framework log chatter turned off."""

from __future__ import annotations

import os
import sys
import warnings

from rich.console import Console

# Piped output (logs, CI) gets wide lines instead of rich's 80-column truncation.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

#: Framework log chatter, off unless --verbose (set before any framework is imported; the user's own
#: settings win): TensorFlow/XLA/absl C++ logs, paddle's glog warnings, gRPC.
#: RESNET_QUIET_IMPORTS: TensorFlow's import-time C++ lines, which ignore TF_CPP_MIN_LOG_LEVEL, are
#: captured (resnet_tools.core.backends.load_backend).
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GLOG_minloglevel": "2",
    "GRPC_VERBOSITY": "ERROR",
    "RESNET_QUIET_IMPORTS": "1",
}


def quiet_frameworks() -> None:
    """Silence the frameworks' own log lines and import-time notices for this process."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=r"paddle(\.|$)")  # PIR / ccache notices
    warnings.filterwarnings("ignore", message=r".*ccache.*")
