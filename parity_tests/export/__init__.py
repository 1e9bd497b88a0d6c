"""Tests of deployment artifacts."""
