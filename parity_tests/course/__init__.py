"""Tests of the course and its checker."""
