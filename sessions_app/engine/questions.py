"""Key decisions for Integration Design, grounded in the cluster's patterns and the team."""

from __future__ import annotations

from dataclasses import dataclass

from sessions_app.engine.context import SessionContext

COMM_LABELS = {
    "rest": "REST",
    "grpc": "gRPC",
    "graphql": "GraphQL",
    "amqp": "events over AMQP",
    "kafka": "events over Kafka",
    "nats": "events over NATS",
    "redis_pubsub": "Redis pub/sub",
}


@dataclass(frozen=True)
class QuestionSpec:
    ref: str
    text: str
    options: tuple[str, ...]


def key_questions(ctx: SessionContext, *, template_slug: str) -> list[QuestionSpec]:
    dominant = COMM_LABELS.get(ctx.dominant_communication, "")
    brokers = [s.name for s in ctx.inventory.services if s.kind == "broker"]
    broker = brokers[0] if brokers else "a message broker"
    auth = sorted({a for s in ctx.inventory.services for a in (s.patterns.get("auth") or [])})
    follow = f" (the cluster's dominant pattern is {dominant})" if dominant else ""
    questions = [
        (
            f"How should the change talk to the services it depends on{follow}?",
            (
                "Synchronous REST calls",
                f"Asynchronous events over {broker}",
                "REST for commands, events for state changes",
            ),
        ),
        (
            "Where does the new data live?",
            (
                "A separate database owned by the new service",
                "A new schema in the existing shared database",
                "No own storage: read through the owning services' APIs",
            ),
        ),
        (
            "How are callers authenticated"
            + (f" (the cluster uses {', '.join(auth)})?" if auth else " (no auth pattern was detected)?"),
            (
                "The cluster's existing scheme, enforced at the gateway",
                "Service-to-service mTLS plus the existing scheme",
                "Separate API keys per client",
            ),
        ),
        (
            "How do we handle failures of downstream calls?",
            (
                "Retries with backoff and a circuit breaker",
                "Outbox pattern with idempotent event consumers",
                "Fail fast and surface the error to the caller",
            ),
        ),
    ]
    if template_slug == "cross-service-feature":
        questions.insert(0, ("Which coordination strategy should the workflow use?", ("Orchestration service", "Event choreography")))
    elif template_slug == "service-refactoring":
        questions.insert(
            0,
            (
                "How do we move traffic to the new boundaries?",
                ("Strangler fig behind the gateway", "Parallel run with shadow traffic", "One coordinated release"),
            ),
        )
    return [QuestionSpec(ref=f"Q{i}", text=text, options=opts) for i, (text, opts) in enumerate(questions, start=1)]


def match_option(answer: str, options: list[str]) -> str | None:
    """Map a specialist's stated option onto one of the question's options, or None."""
    clean = answer.strip().strip("\"'`*").strip().rstrip(".").lower()
    if not clean:
        return None
    for option in options:
        if option.lower() == clean:
            return option
    if len(clean) == 1 and clean.isalpha():  # "A", "b"
        index = ord(clean) - ord("a")
        return options[index] if 0 <= index < len(options) else None
    if clean.isdigit():
        index = int(clean) - 1
        return options[index] if 0 <= index < len(options) else None
    prefixed = [o for o in options if o.lower().startswith(clean) or clean.startswith(o.lower())]
    return prefixed[0] if len(prefixed) == 1 else None
