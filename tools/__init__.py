"""The ``hil`` command line, bag tools and benchmarks."""
