"""Benchmarks: `python -m bench [module ...]` (also `make bench`)."""
