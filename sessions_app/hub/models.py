"""Models of the orchestrator hub (§10). Imported by ``sessions_app.models``."""

from __future__ import annotations
