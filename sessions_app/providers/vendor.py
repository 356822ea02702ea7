"""What the adapters that call a vendor over HTTP share: error mapping, timeout policy, pricing.

Both SDKs raise their own exception trees; the adapters reduce them to an HTTP status, the
vendor's error type and the response headers, and this module decides the message a person
reads on the contribution and whether a retry (by Celery, never by the SDK) can help. One
mapping keeps the wording and the retry policy identical across providers.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from sessions_app.providers.base import ProviderError

# Vendor error types that mean "try again later" even when the HTTP status does not say so,
# e.g. an `error` event in the middle of an Anthropic stream arrives on a 200 response.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "overloaded_error",
        "api_error",
        "rate_limit_error",
        "timeout_error",
        "server_error",
    }
)
# 408 and 409 are retried by the vendors' own clients too: the request was fine, the moment was not.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})

_MAX_DETAIL = 200


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait according to `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def status_error(
    *,
    provider: str,
    status: int,
    model: str,
    key_setting: str,
    error_type: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> ProviderError:
    """The ProviderError for an error status (or an in-stream error event) from a vendor."""
    detail = _short(detail)
    suffix = f": {detail}" if detail else "."
    # An error event inside a stream arrives on a 200 response: name it rather than "HTTP 200".
    code = f"HTTP {status}" if status >= 400 else "error event in the stream"
    if status in (401, 403) or error_type in (
        "authentication_error",
        "permission_error",
    ):
        return ProviderError(
            f"The {provider} provider rejected the API key ({code}): check {key_setting}.",
            transient=False,
        )
    if status == 404 or error_type == "not_found_error" or _names_unknown_model(status, detail):
        where = f" at {endpoint}" if endpoint else ""
        return ProviderError(
            f'The {provider} provider does not know the model "{model}"{where} ({code}): check the model name.',
            transient=False,
        )
    if status == 429 or error_type == "rate_limit_error":
        wait = retry_after_seconds(headers)
        when = f" after {wait:g} s" if wait is not None else " later"
        return ProviderError(
            f"The {provider} provider is rate limited ({code}): it will be retried{when}.",
            transient=True,
            retry_after=wait,
        )
    if status == 529 or error_type == "overloaded_error":
        return ProviderError(
            f"The {provider} provider is overloaded ({code}): it will be retried.",
            transient=True,
            retry_after=retry_after_seconds(headers),
        )
    if status >= 500 or status in TRANSIENT_STATUSES or error_type in TRANSIENT_ERROR_TYPES:
        return ProviderError(
            f"The {provider} provider had a server error ({code}){suffix}",
            transient=True,
            retry_after=retry_after_seconds(headers),
        )
    return ProviderError(
        f"The {provider} provider refused the request ({code}){suffix}",
        transient=False,
    )


def _names_unknown_model(status: int, detail: str) -> bool:
    # Some OpenAI-compatible servers answer an unknown model with 400 instead of 404.
    lowered = detail.lower()
    return status == 400 and "model" in lowered and ("not found" in lowered or "does not exist" in lowered)


def call_timeout(configured: float | None, requested: float | None, default: float) -> float:
    """Seconds allowed for each wait on the vendor (connect, every read of the stream).

    The deployment's setting is a ceiling and a run profile may ask for less, so the smaller
    one wins; the Celery task's time limit bounds the call as a whole.
    """
    candidates = [t for t in (configured, requested) if t is not None and t > 0]
    return min(candidates) if candidates else default


def timeout_error(provider: str, timeout: float) -> ProviderError:
    return ProviderError(
        f"The {provider} provider did not answer within {timeout:g} s: it will be retried.",
        transient=True,
    )


def connection_error(provider: str, endpoint: str) -> ProviderError:
    return ProviderError(
        f"The {provider} provider is unreachable at {endpoint} (connection failed or dropped): it will be retried.",
        transient=True,
    )


def malformed_error(provider: str, detail: str) -> ProviderError:
    return ProviderError(
        f"The {provider} provider sent a malformed reply: {_short(detail)}",
        transient=False,
    )


def empty_error(provider: str, reason: str | None) -> ProviderError:
    why = f" (stop reason: {reason})" if reason else ""
    return ProviderError(f"The {provider} provider returned an empty reply{why}.", transient=False)


def price(
    model: str,
    tokens_in: int,
    tokens_out: int,
    prices: Mapping[str, tuple[float, float]],
) -> float:
    """Estimated USD for a call from a table of USD per million tokens (input, output).

    Rows match by the longest prefix of the model id, so dated ids and aliases share a row;
    a model missing from the table costs 0.
    """
    matches = [prefix for prefix in prices if model.startswith(prefix)]
    if not matches:
        return 0.0
    per_in, per_out = prices[max(matches, key=len)]
    return round((tokens_in * per_in + tokens_out * per_out) / 1_000_000, 6)
