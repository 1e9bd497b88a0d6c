"""Official weights by name: the download cache, verified downloads, and ``id`` / URL / path resolution."""
