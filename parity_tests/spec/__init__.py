"""Tests of the YAML spec, tolerances, properties."""
