"""The engine's boundary to the work queue.

The engine decides what work a change causes (call these specialists, expire this validation
point); a dispatcher decides how it runs. ``sessions_app.tasks``
implements it with Celery and registers it when the app is ready
(:meth:`sessions_app.apps.SessionsAppConfig.ready`), so nothing in the engine imports the
Celery interface above it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

NO_DISPATCHER = (
    "No dispatcher is registered, so the engine cannot hand work to the queue. "
    "sessions_app registers one when Django starts: is it in INSTALLED_APPS and was django.setup() called?"
)


class Dispatcher(Protocol):
    """Hands the engine's work to whatever runs it.

    Every method is called inside the transaction that made the work due and sends it only
    after that transaction commits (nothing is sent for a rolled-back change). None of them
    raises into the caller when the queue is unreachable: the work is in the database, and the
    sweeper sends it again.
    """

    def contributions(self, ids: list[int]) -> None:
        """Run the pending specialist contributions ``ids``."""

    def validation_expiry(self, point_id: int, deadline: datetime) -> None:
        """Apply the validation point's expiry action at ``deadline``."""


_dispatcher: Dispatcher | None = None


def dispatcher_set(dispatcher: Dispatcher | None) -> Dispatcher | None:
    """Register the dispatcher the engine uses from now on; returns the one it replaces."""
    global _dispatcher
    previous, _dispatcher = _dispatcher, dispatcher
    return previous


def dispatcher() -> Dispatcher:
    """The registered dispatcher. Raises RuntimeError when none is registered."""
    if _dispatcher is None:
        raise RuntimeError(NO_DISPATCHER)
    return _dispatcher
