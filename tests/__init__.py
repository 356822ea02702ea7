"""The test suite, mirroring the code; ``tests.support`` also serves the benchmarks."""
