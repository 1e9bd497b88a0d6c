"""Shared low-level helpers the wings build on: atomic files, tensor diffs, errors, the backend contract.
Imports nothing from the wings above it."""
