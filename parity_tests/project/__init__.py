"""Tests of architecture, docs, packaging, reliability."""
