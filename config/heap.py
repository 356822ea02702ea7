"""What a Celery worker loaded while starting lives as long as the process: once started, it is
moved out of the cyclic garbage collector's reach, so a full collection walks only the objects
made since. Otherwise each full collection walks all of Django, the apps and their libraries,
pausing every thread of the worker, a round's calls included, for about 100 ms on a 2-core
machine (8 ms with this).

daphne does not do it: measured with ``python -m bench broadcast``, its p99 rose (61–67 ms →
83–89 ms at 500 viewers). A likely cause: CPython starts a full collection when the objects made since the last
one reach a quarter of those already kept, and with the startup objects frozen that quarter is
small, so they come often while half a thousand sockets keep making objects."""

from __future__ import annotations

import gc


def startup_objects_freeze() -> None:
    """Collect what startup left behind, then freeze what remains. Call once, when started."""
    gc.collect()
    gc.freeze()
