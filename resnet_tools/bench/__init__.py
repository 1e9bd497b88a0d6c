"""Benchmarks: the runner, one worker process per backend, GPU paths, the allocator switch."""
