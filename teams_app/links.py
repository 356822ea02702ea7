"""One base URL for every absolute link a page, an export, an email or a hub answer carries.

``MAESTRO_BASE_URL`` wins when it is set (a proxy in front, a public name). Otherwise a link
made while serving a request uses that request's scheme and host, and one made with no
request (a worker's email, the stdio MCP server) uses the address ``make run`` serves on.
Stored text (the final report) keeps site-relative links and is made absolute on the way out.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest

# A markdown link whose target is a path on this site: [text](/projects/...)
_SITE_LINK = re.compile(r"\]\((/[^)\s]*)\)")


def base_url(request: HttpRequest | None = None, *, origin: str = "") -> str:
    """Scheme and host, without a trailing slash. ``origin`` ("http://host:port") stands in for
    a request where only the ASGI scope is at hand."""
    if settings.MAESTRO_BASE_URL:
        return settings.MAESTRO_BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    if origin:
        return origin.rstrip("/")
    return settings.MAESTRO_SERVE_URL.rstrip("/")


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    return base_url(request) + path


def absolute_links(markdown: str, base: str) -> str:
    """The markdown with its site-relative link targets prefixed by ``base``."""
    base = base.rstrip("/")
    return _SITE_LINK.sub(lambda m: f"]({base}{m.group(1)})", markdown)
