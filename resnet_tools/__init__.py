"""Tooling on top of the backends: the ``resnet`` CLI, parity, conversion. Backends load lazily."""
