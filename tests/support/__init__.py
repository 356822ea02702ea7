"""Test support shared by every test package: the processes a test starts (Celery workers,
daphne, a Redis of its own) and a page-like WebSocket client."""
