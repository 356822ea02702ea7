"""A started worker moves what it loaded out of the cyclic collector's reach
(config/heap.py): a full collection then walks only what was made since, instead of pausing every
thread of the process while it walks all of Django."""

from __future__ import annotations

import gc

from celery import signals

from config.celery import _freeze_startup_objects
from config.heap import startup_objects_freeze


def test_what_startup_loaded_is_left_out_of_collections():
    tracked = len(gc.get_objects())
    try:
        startup_objects_freeze()
        assert gc.get_freeze_count() >= tracked // 2
        assert len(gc.get_objects()) < tracked // 10, "a full collection no longer walks the startup objects"
    finally:
        gc.unfreeze()


def test_a_worker_freezes_once_it_is_ready():
    assert _freeze_startup_objects in [receiver() for _, receiver in signals.worker_ready.receivers]
