"""Deployment artifacts: each backend's exporters (ONNX and its native serving format), the runtimes that run
them, and their parity against the source framework."""
