"""Provider adapters behind one interface (SPEC §4): ``rules``, ``anthropic``, ``openai``.

The Django side builds a :class:`ProviderConfig` from settings and asks :func:`build_provider`
for an adapter by name; nothing in this package reads settings or the environment. The LLM
adapters are imported on demand so that the offline ``rules`` path never loads a vendor SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessions_app.providers.base import (
    DeltaCallback,
    KeyQuestionBrief,
    Position,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
)

PROVIDERS: tuple[str, ...] = ("rules", "anthropic", "openai")

__all__ = [
    "PROVIDERS",
    "DeltaCallback",
    "KeyQuestionBrief",
    "Position",
    "Provider",
    "ProviderConfig",
    "ProviderError",
    "ProviderRequest",
    "ProviderResult",
    "build_provider",
]


@dataclass(frozen=True)
class ProviderConfig:
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    timeout: float = 120.0  # seconds per wait on the vendor; see vendor.call_timeout


def build_provider(name: str, config: ProviderConfig) -> Provider:
    """The adapter called ``name``. Raises a permanent ProviderError for an unknown name.

    Building never fails for missing configuration (no key, no base URL): the adapter reports
    that on its first call, so the message lands on the contribution where people look.
    """
    key = (name or "").strip().lower()
    if key == "rules":
        from sessions_app.providers.rules import RulesProvider

        return RulesProvider()
    if key == "anthropic":
        from sessions_app.providers.anthropic import AnthropicProvider

        return AnthropicProvider(
            api_key=config.anthropic_api_key,
            base_url=config.anthropic_base_url,
            model=config.anthropic_model or "claude-sonnet-4-6",
            timeout=config.timeout,
        )
    if key == "openai":
        from sessions_app.providers.openai import OpenAIProvider

        return OpenAIProvider(
            base_url=config.openai_base_url,
            api_key=config.openai_api_key,
            model=config.openai_model or "gpt-4o-mini",
            timeout=config.timeout,
        )
    raise ProviderError(
        f'Unknown provider "{name}": choose one of {", ".join(PROVIDERS)}.',
        transient=False,
    )
