"""Tests of the three backend packages."""
