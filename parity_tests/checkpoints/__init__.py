"""Tests of checkpoint formats and conversion."""
