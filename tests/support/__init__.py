"""Test support shared by every test package and by the benchmarks: the processes a test starts
(Celery workers, daphne, a Redis of its own, in ``processes``), the local LLM vendor server
(``vendors``) and a page-like WebSocket client (``pages``)."""
