"""Benchmarks: ``python -m bench`` (or ``make bench``) runs every module of this package.

A benchmark module is any ``bench/<name>.py`` not starting with ``_`` that defines ``main(args)``
(prints its own report) or ``run(args) -> dict`` (``__main__`` prints the dict as a JSON line).
Modules with neither (``db``, the throwaway database) are helpers the benchmarks import; the
processes and the local model server they start come from ``tests.support``.
``args`` are the options given after ``--`` on the command line.
"""
