"""Benchmarks behind ``hil bench``: one module per area."""
