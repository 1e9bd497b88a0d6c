"""Tests of parity between frameworks."""
