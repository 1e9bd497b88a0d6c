"""Cross-framework parity: the engine (weights copied across, outputs compared by depth) and its reports."""
