"""Models of the decision log (§8). Imported by ``sessions_app.models``."""

from __future__ import annotations
