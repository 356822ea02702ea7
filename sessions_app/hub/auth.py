"""Bearer tokens of the hub: format, hashing and the lookup every hub interface (HTTP views, the
MCP ASGI app) uses. Only the SHA-256 of a token is stored; the token itself is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from sessions_app.hub.models import ApiToken

TOKEN_PREFIX = "mst_"
DISPLAY_CHARS = 12  # "mst_" + 8 random characters
LAST_USED_RESOLUTION = timedelta(seconds=60)  # at most one write per token per minute
WWW_AUTHENTICATE = 'Bearer realm="maestro-hub"'
WWW_AUTHENTICATE_INVALID = 'Bearer realm="maestro-hub", error="invalid_token"'


def token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def bearer_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def token_authenticate(raw: str | None) -> ApiToken | None:
    """The active token for ``raw`` (with its project loaded), or None. Marks it used, at most once a minute."""
    if not raw:
        return None
    digest = token_hash(raw)
    token = ApiToken.objects.select_related("project").filter(token_hash=digest, revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
