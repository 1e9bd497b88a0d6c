"""Checkpoint files: formats (read/write, restricted unpickling), identification, conversion."""
