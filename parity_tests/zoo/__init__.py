"""Tests of the zoo listing and summary."""
