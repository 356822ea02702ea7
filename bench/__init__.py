"""Benchmarks: ``python -m bench`` (or ``make bench``) runs every module of this package.

A benchmark module is any ``bench/<name>.py`` not starting with ``_`` that defines ``main(args)``
(prints its own report) or ``run(args) -> dict`` (``__main__`` prints the dict as a JSON line).
Modules with neither (``llm_server``, a fake model server) are helpers the benchmarks import.
``args`` are the options given after ``--`` on the command line.
"""
