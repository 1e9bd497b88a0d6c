"""Tests of official weights by id."""
