"""Predict: image preprocessing per model family and top-k classification with any checkpoint."""
