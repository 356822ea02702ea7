"""The one domain error type of Maestro.

Services raise :class:`ApplicationError` with a message written for a person; interfaces
(views, consumers, hub endpoints, MCP tools, management commands) map it in one place each.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message
