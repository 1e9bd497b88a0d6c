"""The zoo as tables: the model list and per-layer summaries."""
