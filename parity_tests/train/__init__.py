"""Tests of training, lockstep and data-parallel."""
