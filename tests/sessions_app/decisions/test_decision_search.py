"""Filters and full-text search: PostgreSQL full-text search on PostgreSQL, icontains on SQLite."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from sessions_app.decisions import selectors
from sessions_app.decisions.models import Decision
from sessions_app.decisions.selectors import DecisionFilters
from sessions_app.decisions.services import hooks, writes
from tests.sessions_app.decisions.builders import make_design
from tests.support.db import postgres_only

pytestmark = pytest.mark.django_db
D = Decision.Status


@pytest.fixture
def log(project, make_user):
    user = make_user()
    design = make_design(project)
    from_question = hooks.decision_from_key_question(question=design.question)
    ledger = writes.decision_create(
        project=project,
        user=user,
        status=D.PROPOSED,
        title="Keep the points ledger in PostgreSQL",
        context="Loyalty balances must never drift when a payment is retried; idempotency matters.",
        justification="Transactions are cheap here.",
        tags=["storage", "loyalty"],
        date=datetime.date(2024, 3, 5),
    )
    cache = writes.decision_create(
        project=project,
        user=user,
        title="Cache the product catalogue",
        context="Catalogue pages are read a thousand times for every write.",
        tags=["caching"],
        date=datetime.date(2024, 5, 20),
    )
    return {"question": from_question, "ledger": ledger, "cache": cache, "design": design}


def _numbers(project, **filters):
    return [d.number for d in selectors.decisions_for_project(project=project, filters=DecisionFilters(**filters))]


def test_search_finds_a_word_of_the_context_and_not_an_absent_word(project, log):
    assert _numbers(project, q="idempotency") == [log["ledger"].number]
    assert _numbers(project, q="catalogue") == [log["cache"].number]
    assert _numbers(project, q="kubernetes") == []


def test_search_reads_title_justification_and_tags(project, log):
    assert _numbers(project, q="ledger") == [log["ledger"].number]
    assert _numbers(project, q="transactions") == [log["ledger"].number]
    assert _numbers(project, q="caching") == [log["cache"].number]


def test_search_every_word_must_match(project, log):
    assert _numbers(project, q="loyalty payment") == [log["ledger"].number]
    assert _numbers(project, q="catalogue payment") == []


def test_search_sees_edits(project, log):
    writes.decision_update(decision=log["cache"], user=None, context="Product pages are served from Redis.")
    assert _numbers(project, q="redis") == [log["cache"].number]
    assert _numbers(project, q="thousand") == []


def test_sqlite_fallback_search_works_on_any_database(project, log, monkeypatch):
    monkeypatch.setattr(selectors, "_is_postgres", lambda: False)
    assert _numbers(project, q="idempotency") == [log["ledger"].number]
    assert _numbers(project, q="Idempotency retried") == [log["ledger"].number]
    assert _numbers(project, q="kubernetes") == []
    assert _numbers(project, q="loyalty", tag="storage") == [log["ledger"].number]


@postgres_only("full-text search with stemming and ranking")
def test_postgres_full_text_search_stems_and_ranks(project, log):
    assert connection.vendor == "postgresql"
    # Stemming: "retries" finds "retried"; a title hit ranks above a body hit.
    assert _numbers(project, q="retries") == [log["ledger"].number]
    writes.decision_create(project=project, user=None, title="Retry payments with backoff", context="Payments fail.")
    ranked = _numbers(project, q="retry")
    assert ranked[0] == 4 and set(ranked) == {4, log["ledger"].number}
    # websearch syntax: a quoted phrase and an exclusion.
    assert _numbers(project, q='"points ledger"') == [log["ledger"].number]
    assert _numbers(project, q="payment -ledger") == [4]


def test_filters(project, log):
    q, ledger, cache, design = log["question"], log["ledger"], log["cache"], log["design"]
    assert _numbers(project) == [cache.number, ledger.number, q.number]
    assert _numbers(project, status=D.PROPOSED) == [ledger.number, q.number]
    assert _numbers(project, status=D.DRAFT) == [cache.number]
    assert _numbers(project, tag="loyalty") == [ledger.number]
    assert _numbers(project, tag="new-service-integration") == [q.number]
    assert _numbers(project, tag="loyal") == []  # whole tags only
    assert _numbers(project, session=design.session.pk) == [q.number]
    assert _numbers(project, specialist="data-flow-analyst") == [q.number]
    assert _numbers(project, specialist="nobody") == []
    assert _numbers(project, date_from=datetime.date(2024, 3, 1), date_to=datetime.date(2024, 3, 31)) == [ledger.number]
    assert _numbers(project, date_to=datetime.date(2024, 6, 1)) == [cache.number, ledger.number]
    assert _numbers(project, status=D.PROPOSED, q="loyalty", tag="storage") == [ledger.number]


def test_timeline_orders_by_date(project, log):
    numbers = _numbers(project, timeline=True)
    assert numbers == [log["question"].number, log["cache"].number, log["ledger"].number]


def test_filter_choices(project, log):
    choices = selectors.decision_filter_choices(project=project)
    assert choices["tags"] == ["caching", "loyalty", "new-service-integration", "storage"]
    assert choices["sessions"] == [(log["design"].session.pk, log["design"].session.title)]
    assert [slug for slug, _ in choices["specialists"]] == [
        "data-flow-analyst",
        "integration-architect",
        "performance-engineer",
        "security-guardian",
    ]


def test_other_projects_decisions_never_show(project, log):
    from teams_app.models import Project

    other = Project.objects.create(name="Other", slug="other")
    writes.decision_create(project=other, user=None, title="Idempotency everywhere", context="idempotency")
    assert _numbers(project, q="idempotency") == [log["ledger"].number]
    assert _numbers(other, q="idempotency") == [1]
