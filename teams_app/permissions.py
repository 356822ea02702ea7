"""What each project role may do. One table, consulted by views, consumers and the hub."""

from __future__ import annotations

from enum import StrEnum

from teams_app.models import Membership

R = Membership.Role


class Action(StrEnum):
    VIEW = "view"
    MANAGE_MEMBERS = "manage_members"
    EDIT_PRDS = "edit_prds"
    EDIT_DECISIONS = "edit_decisions"
    EDIT_INVENTORY = "edit_inventory"
    RUN_SESSIONS = "run_sessions"
    POST_MESSAGES = "post_messages"
    ANSWER_VALIDATION = "answer_validation"
    MANAGE_TOKENS = "manage_tokens"


ALLOWED: dict[Action, frozenset[str]] = {
    Action.VIEW: frozenset({R.OWNER, R.ARCHITECT, R.PRODUCT_OWNER, R.VIEWER}),
    Action.MANAGE_MEMBERS: frozenset({R.OWNER}),
    Action.EDIT_PRDS: frozenset({R.OWNER, R.ARCHITECT, R.PRODUCT_OWNER}),
    Action.EDIT_DECISIONS: frozenset({R.OWNER, R.ARCHITECT, R.PRODUCT_OWNER}),
    Action.EDIT_INVENTORY: frozenset({R.OWNER, R.ARCHITECT}),
    Action.RUN_SESSIONS: frozenset({R.OWNER, R.ARCHITECT}),
    Action.POST_MESSAGES: frozenset({R.OWNER, R.ARCHITECT, R.PRODUCT_OWNER}),
    Action.ANSWER_VALIDATION: frozenset({R.PRODUCT_OWNER}),
    Action.MANAGE_TOKENS: frozenset({R.OWNER}),
}


def role_allows(role: str | None, action: Action) -> bool:
    return role is not None and role in ALLOWED[action]
