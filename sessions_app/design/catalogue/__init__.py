"""The catalogue of capability patterns (payments and PCI, subscriptions, reservations and
holds, notifications, search, audit and retention, identity, file storage, reporting,
scheduling, reliable delivery) and the matching of a text against it."""

from __future__ import annotations

from sessions_app.design.catalogue import patterns as _patterns  # noqa: F401  (registers the patterns)
from sessions_app.design.catalogue.base import REGISTRY, Draft, Facts, Ground, Pattern, QuestionDraft, TaskDraft, match

__all__ = ["REGISTRY", "Draft", "Facts", "Ground", "Pattern", "QuestionDraft", "TaskDraft", "match"]
