"""A worker moves what it loaded at startup out of the cyclic collector's reach once it is ready
(config/celery.py): a full collection then walks only what was made since, instead of pausing
every thread of the worker, a round's calls included, while it walks all of Django."""

from __future__ import annotations

import gc

from config.celery import _freeze_startup_objects


def test_a_ready_worker_leaves_its_startup_objects_out_of_collections():
    tracked = len(gc.get_objects())
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() >= tracked // 2
        assert len(gc.get_objects()) < tracked // 10, "a full collection no longer walks the startup objects"
    finally:
        gc.unfreeze()
