"""Decision log benchmark: the list page and a full-text search over 10,000 decisions.

For page sizes 10, 25 and 100, through the Django test client signed in as a project member:

* queries per page (``CaptureQueriesContext``): must be the same whatever the page size;
* server time p50 / p95 over ``--requests`` requests (after a short warm-up).

The goal (SPEC issue 5) is p95 under 150 ms on PostgreSQL. Runs against a throwaway test database
created from the configured settings (``config.settings.test`` unless DJANGO_SETTINGS_MODULE says
otherwise) under a bench-specific name, destroyed at the end, so neither a developer's data nor a
concurrent test run is touched. ``DATABASE_URL=postgres://… python -m bench decisions`` for PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import time
from typing import Any

GOAL_P95_MS = 150.0
DECISIONS = 10_000
PAGE_SIZES = (10, 25, 100)
SEARCH = "keycloak"

DOMAINS = [
    "orders",
    "payments",
    "checkout",
    "catalog",
    "cart",
    "shipping",
    "identity",
    "search",
    "pricing",
    "loyalty",
    "reviews",
    "inventory",
    "notifications",
    "reporting",
    "billing",
    "customers",
]
TECH = [
    "PostgreSQL",
    "Redis",
    "RabbitMQ",
    "Kafka",
    "gRPC",
    "REST",
    "GraphQL",
    "an outbox table",
    "a saga",
    "Envoy",
    "OpenTelemetry",
    "Keycloak",
    "mTLS",
    "S3",
    "Elasticsearch",
    "a circuit breaker",
    "a read model",
    "CQRS",
]
VERBS = ["Use", "Adopt", "Introduce", "Keep", "Replace", "Retire", "Standardise on", "Move to", "Avoid"]
CONCERNS = [
    "consistency",
    "latency",
    "throughput",
    "auditability",
    "cost",
    "operability",
    "security",
    "resilience",
    "data ownership",
    "observability",
    "idempotency",
    "backpressure",
    "schema evolution",
    "tenant isolation",
]
SENTENCES = [
    "The {domain} service calls {other} synchronously on every request, which couples their release cycles.",
    "During the last incident {domain} lost events when the broker restarted; {concern} is now the main driver.",
    "{other} owns the data that {domain} reads, but today both write to the same schema.",
    "Peak traffic doubles during campaigns and {domain} must keep p99 latency under 300 ms.",
    "Writing the event and the state change in one transaction with an outbox avoids dual writes.",
    "The team already operates {tech} in production, so the operational cost is known.",
    "Auditors ask who changed {domain} prices and when; {concern} matters more than raw speed.",
    "A read model fed by events would let {other} answer queries without calling {domain}.",
    "Retries without idempotency keys created duplicate {domain} records twice this quarter.",
    "Service-to-service calls currently carry no identity, so {concern} depends on the network alone.",
]
TAGS = [
    "storage",
    "messaging",
    "api",
    "security",
    "performance",
    "observability",
    "data-flow",
    "integration",
    "resilience",
    "cost",
    "compliance",
    "frontend",
    "platform",
    "new-service-integration",
    "service-refactoring",
    "cross-service-feature",
    "database",
    "caching",
    "events",
    "auth",
]
STATUSES = ["accepted"] * 6 + ["proposed"] * 2 + ["superseded", "deprecated", "rejected", "draft"]
SPECIALISTS = [
    ("integration-architect", "Integration Architect", "anthropic", "claude-sonnet-4"),
    ("data-flow-analyst", "Data Flow Analyst", "openai", "llama3.1:70b"),
    ("security-guardian", "Security Guardian", "rules", "rules-v1"),
    ("performance-engineer", "Performance Engineer", "anthropic", "claude-sonnet-4"),
    ("pattern-archaeologist", "Pattern Archaeologist", "rules", "rules-v1"),
    ("devops-specialist", "DevOps Specialist", "openai", "qwen2.5:32b"),
]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _sentence(rng: random.Random) -> str:
    domain, other = rng.sample(DOMAINS, 2)
    return rng.choice(SENTENCES).format(domain=domain, other=other, tech=rng.choice(TECH), concern=rng.choice(CONCERNS))


def populate(count: int, seed: int = 5) -> tuple[Any, Any]:
    """One project with ``count`` decisions (bulk_create), sessions, provenance and links; returns
    (project, a viewer member)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from sessions_app.decisions.models import Decision, DecisionLink, DecisionOption, DecisionProvenance
    from sessions_app.models import Contribution, DesignSession, Round
    from teams_app.models import PRD, Membership, Project

    rng = random.Random(seed)
    project = Project.objects.create(name="Bench shop", slug="bench-shop")
    viewer = get_user_model().objects.create_user(username="bench-viewer", password="bench-Secret-1")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    prd = PRD.objects.create(project=project, reference="PRD-100", title="Platform roadmap")
    contributions = []
    sessions = []
    for s in range(40):
        session = DesignSession.objects.create(
            project=project,
            team_name="New Service Integration Team",
            title=f"Design session {s + 1}: {rng.choice(DOMAINS)}",
            requirement=_sentence(rng),
            prd=prd,
            status=DesignSession.Status.COMPLETED,
            phase="completed",
        )
        rnd = Round.objects.create(session=session, number=3, phase="design", kind="design")
        sessions.append(session)
        for slug, name, provider, model in SPECIALISTS:
            contributions.append(
                Contribution.objects.create(
                    session=session,
                    round=rnd,
                    author="specialist",
                    specialist_slug=slug,
                    author_name=name,
                    provider=provider,
                    model=model,
                    text=_sentence(rng),
                )
            )
    start = datetime.date(2023, 1, 1)
    rows = []
    for n in range(1, count + 1):
        verb, tech, domain = rng.choice(VERBS), rng.choice(TECH), rng.choice(DOMAINS)
        from_session = rng.random() < 0.4
        rows.append(
            Decision(
                project=project,
                number=n,
                slug=f"{verb}-{tech}-for-{domain}".lower().replace(" ", "-")[:60],
                title=f"{verb} {tech} for {domain}",
                status=rng.choice(STATUSES),
                date=start + datetime.timedelta(days=rng.randrange(0, 1000)),
                decision_makers=rng.sample(["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima"], 2),
                consulted=[s[1] for s in rng.sample(SPECIALISTS, 3)] if from_session else [],
                context=" ".join(_sentence(rng) for _ in range(rng.randint(2, 5))),
                decision_drivers=rng.sample(CONCERNS, 3),
                chosen_option=f"{tech}",
                justification=f"it gives the best {rng.choice(CONCERNS)} for {domain}. " + _sentence(rng),
                consequences=f"* Good, because {_sentence(rng)}\n* Bad, because {_sentence(rng)}",
                tags=rng.sample(TAGS, rng.randint(1, 3)),
                prd_reference="PRD-100",
                prd=prd,
                session=rng.choice(sessions) if from_session else None,
            )
        )
    Decision.objects.bulk_create(rows, batch_size=1000)
    decisions = list(Decision.objects.filter(project=project).only("id", "number", "session_id").order_by("number"))
    DecisionOption.objects.bulk_create(
        (
            DecisionOption(decision=d, order=i, title=f"Option {i}", good=[_sentence(rng)], bad=[_sentence(rng)])
            for d in decisions
            for i in (1, 2)
        ),
        batch_size=2000,
    )
    by_session: dict[int, list[Any]] = {}
    for c in contributions:
        by_session.setdefault(c.session_id, []).append(c)
    DecisionProvenance.objects.bulk_create(
        (
            DecisionProvenance(
                decision=d,
                contribution=c,
                specialist_slug=c.specialist_slug,
                author_name=c.author_name,
                provider=c.provider,
                model=c.model,
            )
            for d in decisions
            if d.session_id
            for c in rng.sample(by_session[d.session_id], 3)
        ),
        batch_size=2000,
    )
    DecisionLink.objects.bulk_create(
        (
            DecisionLink(
                from_decision=decisions[i + rng.randint(1, 20)],
                to_decision=decisions[i],
                kind=rng.choice(["supersedes", "amends", "relates"]),
            )
            for i in range(0, count - 21, 7)
        ),
        batch_size=2000,
        ignore_conflicts=True,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return project, viewer


def _timed_get(client: Any, path: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.get(path, params)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed


def measure(client: Any, path: str, params: dict[str, Any], requests: int) -> dict[str, Any]:
    """Queries per page and server time. The filter choices are cached per project (see
    ``decision_filter_choices``): "cold" clears the cache before each request, "warm" does not."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for state in ("cold", "warm"):
        if state == "cold":
            cache.clear()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path, params)
        assert response.status_code == 200, response.status_code
        counts[state] = len(ctx.captured_queries)  # now: later requests reset the connection's query log
    rows = response.content.decode().count('class="adr"')
    for _ in range(3):  # warm-up
        client.get(path, params)
    warm = [_timed_get(client, path, params) for _ in range(requests)]
    cold = []
    for _ in range(max(10, requests // 2)):
        cache.clear()
        cold.append(_timed_get(client, path, params))
    return {
        "rows": rows,
        "queries_cold": counts["cold"],
        "queries_warm": counts["warm"],
        "p50_ms": round(statistics.median(warm), 1),
        "p95_ms": round(_percentile(warm, 0.95), 1),
        "cold_p50_ms": round(statistics.median(cold), 1),
        "cold_p95_ms": round(_percentile(cold, 0.95), 1),
    }


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench decisions --")
    parser.add_argument("--decisions", type=int, default=DECISIONS)
    parser.add_argument("--requests", type=int, default=50)
    options = parser.parse_args(args or [])

    _setup_django()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from bench.db import throwaway_database
    from sessions_app.decisions.models import Decision

    with throwaway_database("decisions"):
        started = time.perf_counter()
        project, viewer = populate(options.decisions)
        populate_s = time.perf_counter() - started
        client = Client()
        client.force_login(viewer)
        path = reverse("decision_list", kwargs={"slug": project.slug})
        matches = client.get(path, {"q": SEARCH}).context["page"].paginator.count
        results: dict[str, dict[str, Any]] = {}
        for label, params in (("list", {}), ("search", {"q": SEARCH})):
            for size in PAGE_SIZES:
                results[f"{label}/{size}"] = measure(client, path, {**params, "per_page": size}, options.requests)
        p95 = max(r["p95_ms"] for r in results.values())
        cold_p95 = max(r["cold_p95_ms"] for r in results.values())
        queries = {
            (label, state): {r[f"queries_{state}"] for k, r in results.items() if k.startswith(label)}
            for label in ("list", "search")
            for state in ("cold", "warm")
        }
        return {
            "bench": "decisions",
            "vendor": connection.vendor,
            "decisions": Decision.objects.filter(project=project).count(),
            "search": SEARCH,
            "search_matches": matches,
            "requests": options.requests,
            "populate_s": round(populate_s, 1),
            "results": results,
            "queries_constant": all(len(v) == 1 for v in queries.values()),
            "worst_p95_ms": p95,
            "worst_cold_p95_ms": cold_p95,
            "goal_p95_ms": GOAL_P95_MS,
            "within_goal": p95 < GOAL_P95_MS,
            "cold_within_goal": cold_p95 < GOAL_P95_MS,
        }


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['decisions']} decisions on {result['vendor']}; search {result['search']!r} matches "
        f"{result['search_matches']}; {result['requests']} requests per row (populated in {result['populate_s']} s)"
    )
    print(f"  {'page':<14} {'rows':>5} {'queries':>9} {'p50':>9} {'p95':>9} {'cold p50':>9} {'cold p95':>9}")
    for key, r in result["results"].items():
        print(
            f"  {key:<14} {r['rows']:>5} {r['queries_warm']:>4} / {r['queries_cold']:<2}"
            f" {r['p50_ms']:>7.1f}ms {r['p95_ms']:>7.1f}ms {r['cold_p50_ms']:>7.1f}ms {r['cold_p95_ms']:>7.1f}ms"
        )
    print("  queries: warm / cold filter-choices cache; cold = the cache cleared before every request")
    print(f"  queries per page constant across page sizes: {'yes' if result['queries_constant'] else 'NO'}")
    verdict = "within" if result["within_goal"] else "OVER"
    print(
        f"  worst p95 {result['worst_p95_ms']:.1f} ms (cold cache {result['worst_cold_p95_ms']:.1f} ms); "
        f"goal under {result['goal_p95_ms']:.0f} ms → {verdict} the goal"
    )
    print(json.dumps(result, sort_keys=True))


def main(args: list[str] | None = None) -> int:
    report(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
