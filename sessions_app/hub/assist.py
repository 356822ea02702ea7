"""The assist tools' brief: a deterministic, rule-based reading of what the caller sent.

``debug_assist``, ``architect_assist``, ``database_assist`` and ``ui_assist`` take free text
(``context``, ``error``, ``symptom``, ``logs``, ``component``) and metadata (``files``, ``tags``).
:func:`assist_brief` turns them, with the project's cluster inventory, into an :class:`AssistBrief`:
the terms the request used, what the inventory says about the services it names, arithmetic where
the numbers are known (replicas × pool size against the database's connection limit), what is
still unknown, and the checks that follow. The same brief is the specialist's requirement (so a
language-model provider reads it) and, rendered, the hub's rule-based answer.

No Django and no clock here: the same request and inventory always give the same brief.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from teams_app.inventory.types import ParsedInventory, ServiceSpec

LABEL = "rule-based assist analysis"

# Environment variable names that hold a client's connection-pool size, most specific first.
POOL_VARS = re.compile(
    r"(?:^|_)(?:DB_|DATABASE_|SQLALCHEMY_|PG_|POSTGRES_|MYSQL_|HIKARI_|DATASOURCE_HIKARI_)?"
    r"(?:POOL_SIZE|MAXIMUM_POOL_SIZE|MAX_POOL_SIZE|POOL_MAX|CONN_POOL_SIZE|MAX_POOL)$",
    re.I,
)
OVERFLOW_VARS = re.compile(r"(?:^|_)(?:MAX_OVERFLOW|POOL_OVERFLOW)$", re.I)
MAX_CONN_VARS = re.compile(r"(?:^|_)MAX_CONNECTIONS$", re.I)
MAX_CONN_FLAG = re.compile(r"max_connections\s*[=:]\s*(\d+)", re.I)
WORKER_VARS = re.compile(r"^(?:WEB_CONCURRENCY|GUNICORN_WORKERS|WORKERS|UVICORN_WORKERS|PUMA_WORKERS)$", re.I)
REPLICAS_TEXT = re.compile(
    r"(?:(?:scal(?:e|ed|ing)|grow|grew|went|going)\s+(?:up\s+)?(?:out\s+)?to\s+(\d+)"
    r"|(\d+)\s+(?:replicas|instances|pods|containers|copies|nodes))",
    re.I,
)
INT = re.compile(r"^\s*(\d+)\s*$")
WORD = re.compile(r"[a-z][a-z0-9_.-]{2,}", re.I)
STOP = frozenset(
    "the and for with from that this have has had are was were been after before into onto when then than "
    "our your their its not but all any can could should would will what which who how why where there here "
    "about also some more most very just only over under each every does did doing done use used using "
    "need needs want wants new old get got".split()
)
DEFAULT_DB_LIMITS = {"postgres": 100, "mysql": 151, "mariadb": 151}  # the servers' shipped defaults


@dataclass
class AssistRequest:
    """What an assist tool was given, as plain data."""

    tool: str
    context: str
    error: str = ""
    symptom: str = ""
    logs: str = ""
    component: str = ""
    files: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(p for p in (self.symptom, self.error, self.context, self.logs, self.component) if p)


@dataclass
class AssistBrief:
    tool: str
    topic: str  # what the rules recognised, e.g. "connection-pool exhaustion"
    terms: list[str]
    services: list[str]
    facts: list[str] = field(default_factory=list)
    arithmetic: list[str] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## Assist brief ({LABEL}): {self.topic}", ""]
        lines.append("Terms from the request: " + (", ".join(f"`{t}`" for t in self.terms) or "(none)"))
        lines.append("Services named: " + (", ".join(self.services) or "none of the inventory's services"))
        for title, items in (
            ("What the inventory says", self.facts),
            ("Arithmetic", self.arithmetic),
            ("Unknown", self.unknowns),
            ("Next checks", self.steps),
        ):
            if items:
                lines += ["", f"### {title}", *[f"- {item}" for item in items]]
        return "\n".join(lines) + "\n"


# -- reading the request ------------------------------------------------------------------------


def _terms(request: AssistRequest, limit: int = 12) -> list[str]:
    """The request's own words, in order of first use: tags, component, then distinctive words."""
    seen: dict[str, None] = {}
    for tag in request.tags:
        seen.setdefault(tag.strip().lower(), None)
    if request.component:
        seen.setdefault(request.component.strip(), None)
    for source in (request.symptom, request.error, request.context):
        for word in WORD.findall(source or ""):
            low = word.lower().strip(".-")
            if low not in STOP and not low.isdigit() and len(low) > 3:
                seen.setdefault(low, None)
    return [t for t in seen if t][:limit]


def _mentioned(request: AssistRequest, inventory: ParsedInventory) -> list[ServiceSpec]:
    haystack = " ".join([request.text, *request.files, *request.tags]).lower()
    return [s for s in inventory.services if re.search(rf"(?<![\w-]){re.escape(s.name.lower())}(?![\w-])", haystack)]


def _of(name: str) -> str:
    """The possessive: orders' pool, ordersdb's limit."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _has(text: str, *words: str) -> bool:
    low = text.lower()
    return any(w in low for w in words)


def _int_env(service: ServiceSpec, pattern: re.Pattern[str]) -> tuple[str, int] | None:
    for name, value in sorted(service.environment.items()):
        if pattern.search(name):
            m = INT.match(value or "")
            if m:
                return name, int(m.group(1))
    return None


def _db_flavour(service: ServiceSpec) -> str | None:
    image = (service.image or service.name).lower()
    return next((f for f in DEFAULT_DB_LIMITS if f in image or (f == "postgres" and "pg" in image.split(":")[0])), None)


def _databases_of(service: ServiceSpec, inventory: ParsedInventory) -> list[ServiceSpec]:
    targets = [d.target for d in inventory.dependencies if d.source == service.name]
    out = [inventory.service(t) for t in targets]
    return [s for s in out if s is not None and s.kind == "database"]


def _replicas_in_text(text: str) -> int | None:
    for m in REPLICAS_TEXT.finditer(text):
        value = m.group(1) or m.group(2)
        if value:
            return int(value)
    return None


# -- the shared rules ---------------------------------------------------------------------------


def _pool_arithmetic(brief: AssistBrief, request: AssistRequest, inventory: ParsedInventory,
                     named: list[ServiceSpec]) -> None:
    """Connections the clients can open (replicas × workers × (pool + overflow)) against the limit."""
    clients = [s for s in named if s.kind != "database"] or [
        s for s in inventory.services if _int_env(s, POOL_VARS) and _databases_of(s, inventory)
    ]
    if not clients:
        brief.unknowns.append("Which service owns the pool: name it, or import an inventory that has it.")
        return
    text_replicas = _replicas_in_text(request.text)
    for client in clients:
        pool = _int_env(client, POOL_VARS)
        overflow = _int_env(client, OVERFLOW_VARS)
        workers = _int_env(client, WORKER_VARS)
        replicas = text_replicas or client.replicas or 1
        where = "from the request" if text_replicas else "from the inventory"
        if pool is None:
            brief.unknowns.append(
                f"{_of(client.name)} pool size: no *POOL_SIZE variable in its environment; the driver default applies "
                "(SQLAlchemy 5 + 10 overflow, HikariCP 10, node-postgres 10)."
            )
            continue
        per_process = pool[1] + (overflow[1] if overflow else 0)
        processes = replicas * (workers[1] if workers else 1)
        total = processes * per_process
        parts = [f"{replicas} replicas ({where})"]
        if workers:
            parts.append(f"{workers[1]} workers ({workers[0]})")
        parts.append(f"{pool[1]} pool ({pool[0]})" + (f" + {overflow[1]} overflow ({overflow[0]})" if overflow else ""))
        line = f"{client.name}: " + " × ".join(parts) + f" = {total} connections at peak"
        if not workers:
            brief.unknowns.append(f"{_of(client.name)} worker processes per replica: assumed 1 (no WEB_CONCURRENCY/WORKERS set).")
        databases = _databases_of(client, inventory) or [s for s in named if s.kind == "database"]
        if not databases:
            brief.arithmetic.append(line + "; the database it uses is not in the inventory.")
            brief.unknowns.append(f"Which database {client.name} connects to (no dependency in the inventory).")
            continue
        for db in databases:
            limit, source = _db_limit(db)
            if limit is None:
                brief.arithmetic.append(line + f" against {db.name}, whose max_connections is unknown.")
                brief.unknowns.append(f"{_of(db.name)} max_connections: not in its environment or labels.")
                continue
            others = _other_clients(db, client, inventory)
            used = total + sum(n for _, n in others)
            verdict = "over" if used > limit else ("at" if used == limit else "under")
            detail = f" (+ {', '.join(f'{name} {n}' for name, n in others)})" if others else ""
            brief.arithmetic.append(
                f"{line}{detail} → {used} of {_of(db.name)} {limit} max_connections ({source}): {verdict} the limit"
                + (f" by {used - limit}." if used > limit else f", {limit - used} to spare." if used < limit else ".")
            )
            fit = (limit - sum(n for _, n in others)) // max(processes, 1)
            brief.steps.append(
                f"Keep {_of(client.name)} pool + overflow at or below {max(fit, 0)} per process for {processes} processes, "
                f"or put PgBouncer (transaction pooling) in front of {db.name}."
            )


def _db_limit(db: ServiceSpec) -> tuple[int | None, str]:
    found = _int_env(db, MAX_CONN_VARS)
    if found:
        return found[1], found[0]
    for text in (*db.labels.values(), db.description):
        m = MAX_CONN_FLAG.search(text or "")
        if m:
            return int(m.group(1)), "max_connections setting"
    flavour = _db_flavour(db)
    if flavour:
        return DEFAULT_DB_LIMITS[flavour], f"{flavour}'s default, not set in the inventory"
    return None, ""


def _other_clients(db: ServiceSpec, client: ServiceSpec, inventory: ParsedInventory) -> list[tuple[str, int]]:
    out = []
    for dep in inventory.dependencies:
        if dep.target != db.name or dep.source == client.name:
            continue
        other = inventory.service(dep.source)
        pool = _int_env(other, POOL_VARS) if other else None
        if other is not None and pool is not None:
            out.append((other.name, other.replicas * pool[1]))
    return sorted(out)


def _service_facts(brief: AssistBrief, services: Iterable[ServiceSpec], inventory: ParsedInventory) -> None:
    for s in services:
        bits = [s.kind, f"image {s.image}" if s.image else "", f"{s.replicas} replica(s)"]
        if s.resources:
            bits.append("resources " + ", ".join(f"{k}={v}" for k, v in sorted(s.resources.items())))
        if not s.healthcheck:
            bits.append("no healthcheck")
        deps = sorted(f"{d.target} ({d.kind})" for d in inventory.dependencies if d.source == s.name)
        users = sorted(d.source for d in inventory.dependencies if d.target == s.name)
        if deps:
            bits.append("calls " + ", ".join(deps))
        if users:
            bits.append("used by " + ", ".join(users))
        brief.facts.append(f"{s.name}: " + "; ".join(b for b in bits if b) + ".")


# -- per tool -----------------------------------------------------------------------------------


def _debug(brief: AssistBrief, request: AssistRequest, inventory: ParsedInventory, named: list[ServiceSpec]) -> None:
    text = request.text
    if _has(text, "pool") and _has(text, "exhaust", "timeout", "timed out", "too many", "remaining connection", "queuepool"):
        brief.topic = "connection-pool exhaustion"
        _pool_arithmetic(brief, request, inventory, named)
        brief.steps.append("Check for connections held across slow calls (a transaction left open while calling another service).")
    elif _has(text, "oomkilled", "out of memory", "memory limit", "killed", "heap"):
        brief.topic = "memory exhaustion"
        for s in named or inventory.services:
            limit = s.resources.get("memory")
            if limit:
                brief.arithmetic.append(f"{s.name}: {s.replicas} replica(s) × {limit} = the memory the scheduler reserves.")
            elif named:
                brief.unknowns.append(f"{_of(s.name)} memory limit: not set in the inventory.")
        brief.steps += ["Compare the process's resident memory at the kill with the limit.",
                        "Look for unbounded caches or batch loads proportional to input size."]
    elif _has(text, "timeout", "timed out", "504", "deadline exceeded", "latency", "slow"):
        brief.topic = "timeouts along a call chain"
        for s in named:
            chain = [d for d in inventory.dependencies if d.source == s.name and d.kind.startswith("sync")]
            if chain:
                brief.facts.append(f"{s.name} calls {len(chain)} service(s) synchronously: "
                                   + ", ".join(sorted(d.target for d in chain)) + "; each hop adds its own timeout.")
        brief.steps += ["Set each hop's timeout below its caller's, with a budget for retries.",
                        "Add a circuit breaker on the slowest synchronous dependency."]
    elif _has(text, "connection refused", "econnrefused", "no such host", "name or service not known", "getaddrinfo"):
        brief.topic = "a dependency that cannot be reached"
        for s in named:
            ports = ", ".join(str(p.container) for p in s.ports) or ", ".join(map(str, s.expose)) or "none declared"
            brief.facts.append(f"{s.name} listens on: {ports}; networks: {', '.join(s.networks) or 'default'}.")
        brief.steps += ["Check the caller's URL host and port against the target's service name and port.",
                        "Start order: the caller needs the target healthy (depends_on condition or a readiness probe)."]
    elif _has(text, "crashloop", "exit code", "exited with", "restarting", "back-off"):
        brief.topic = "a crash loop"
        for s in named:
            brief.facts.append(f"{s.name}: restart policy {s.restart or 'unset'}; healthcheck {'set' if s.healthcheck else 'missing'}.")
        brief.steps.append("Read the first error before the first restart, not the last one.")
    else:
        brief.topic = "an unclassified error"
        brief.steps.append("Reproduce with the smallest input and capture the first stack frame in your own code.")
    first_error = next((ln.strip() for ln in (request.error or request.logs).splitlines() if ln.strip()), "")
    if first_error:
        brief.facts.insert(0, f"First error line: {first_error[:200]}")
    frames = [f for f in request.files if f]
    if frames:
        brief.steps.append("Start reading at " + ", ".join(frames[:5]) + ".")


ARCH_TOPICS = (
    (("microservice", "monolith", "split", "extract", "decompose"), "service boundaries"),
    (("event", "queue", "kafka", "rabbitmq", "amqp", "pub/sub", "async"), "synchronous calls against events"),
    (("cache", "redis", "memcached"), "caching"),
    (("gateway", "bff", "edge", "ingress"), "the edge and the gateway"),
    (("region", "scale", "replica", "throughput", "load"), "scaling"),
)


def _architect(brief: AssistBrief, request: AssistRequest, inventory: ParsedInventory, named: list[ServiceSpec]) -> None:
    text = request.text
    brief.topic = next((topic for words, topic in ARCH_TOPICS if _has(text, *words)), "a design decision")
    sync = [d for d in inventory.dependencies if d.kind.startswith("sync")]
    events = [d for d in inventory.dependencies if d.kind == "async_event"]
    if inventory.services:
        brief.facts.append(f"The cluster has {len(inventory.services)} services, {len(sync)} synchronous and "
                           f"{len(events)} event edges.")
    shared: dict[str, list[str]] = {}
    for d in inventory.dependencies:
        target = inventory.service(d.target)
        if target is not None and target.kind == "database":
            shared.setdefault(d.target, []).append(d.source)
    for db, users in sorted(shared.items()):
        if len(users) > 1:
            brief.facts.append(f"{db} is shared by {', '.join(sorted(users))}: a coupling any split has to cut.")
    for s in named:
        fan_out = sorted(d.target for d in sync if d.source == s.name)
        if fan_out:
            brief.facts.append(f"{s.name} waits on {len(fan_out)} synchronous call(s): {', '.join(fan_out)}.")
    if brief.topic == "synchronous calls against events":
        brief.steps += ["Move calls whose answer the caller does not need right away onto events (outbox pattern).",
                        "Give each event a schema and a version before the second consumer arrives."]
    elif brief.topic == "service boundaries":
        brief.steps += ["Cut along data ownership first: one writer per table.",
                        "Keep the first extraction behind the same API (strangler fig)."]
    elif brief.topic == "caching":
        brief.steps += ["Name the invalidation event for each cached value before adding the cache."]
    elif brief.topic == "scaling":
        brief.steps += ["State the target load and the current bottleneck with numbers before choosing."]
        if _has(text, "pool", "connection"):
            _pool_arithmetic(brief, request, inventory, named)
    else:
        brief.steps.append("Write the decision as an ADR: context, options, the chosen one and its consequences.")
    if not named:
        brief.unknowns.append("Which services the decision touches: none of the inventory's names appear in the request.")


DB_TOPICS = (
    (("tenant", "row-level", "rls", "multi-tenant"), "multi-tenancy"),
    (("migration", "migrate", "add column", "rename", "backfill", "alter table"), "a schema migration"),
    (("index", "slow query", "explain", "n+1", "full scan", "seq scan"), "query performance"),
    (("partition", "shard"), "partitioning"),
    (("pool", "connection", "max_connections"), "connections"),
    (("replica", "replication", "read-only"), "replication"),
)


def _database(brief: AssistBrief, request: AssistRequest, inventory: ParsedInventory, named: list[ServiceSpec]) -> None:
    text = request.text
    brief.topic = next((topic for words, topic in DB_TOPICS if _has(text, *words)), "schema design")
    databases = [s for s in named if s.kind == "database"] or [s for s in inventory.services if s.kind == "database"]
    for db in databases:
        users = sorted(d.source for d in inventory.dependencies if d.target == db.name)
        flavour = _db_flavour(db) or "unknown engine"
        brief.facts.append(f"{db.name}: {flavour} ({db.image or 'no image'}), used by {', '.join(users) or 'no service'}.")
    if not databases:
        brief.unknowns.append("The database engine and version: the inventory has no database service.")
    if brief.topic == "multi-tenancy":
        brief.steps += ["Put tenant_id on every tenant-owned table and lead each index with it.",
                        "With PostgreSQL, enforce it with row-level security policies on a non-owner role."]
    elif brief.topic == "a schema migration":
        brief.steps += ["Expand, migrate, contract: add nullable, backfill in batches, then constrain.",
                        "Check which services read the table before renaming anything."]
    elif brief.topic == "query performance":
        brief.steps += ["Run EXPLAIN (ANALYZE, BUFFERS) on the slow query and index its filter and sort columns."]
    elif brief.topic == "connections":
        _pool_arithmetic(brief, request, inventory, named)
    elif brief.topic == "partitioning":
        brief.steps += ["Pick the partition key from the queries' WHERE clauses, not from the data's size."]
    elif brief.topic == "replication":
        brief.steps += ["Decide which reads tolerate replica lag and route only those."]
    else:
        brief.steps.append("List the entities, their owners and their invariants before choosing tables.")


UI_TOPICS = (
    (("dashboard", "chart", "kpi", "metric"), "a dashboard"),
    (("form", "wizard", "input", "validation", "checkout"), "a form flow"),
    (("table", "list", "grid", "pagination"), "a data table"),
    (("mobile", "responsive", "breakpoint", "tablet"), "a responsive layout"),
    (("accessib", "a11y", "screen reader", "keyboard", "contrast"), "accessibility"),
    (("modal", "dialog", "drawer"), "a dialog"),
)


def _ui(brief: AssistBrief, request: AssistRequest, inventory: ParsedInventory, named: list[ServiceSpec]) -> None:
    text = request.text
    brief.topic = next((topic for words, topic in UI_TOPICS if _has(text, *words)), "a component")
    component = request.component.strip() or "the component"
    fronts = [s for s in inventory.services if s.kind == "gateway" or _has(s.name + s.image, "web", "frontend", "ui", "nginx")]
    for s in fronts:
        brief.facts.append(f"{s.name} serves the front end ({s.image or s.kind}).")
    brief.steps.append(f"Design {_of(component)} loading, empty, error and success states before its happy path.")
    if brief.topic == "a dashboard":
        brief.steps += ["Lead with at most four numbers that answer the user's first question; details below the fold."]
    elif brief.topic == "a form flow":
        brief.steps += ["Validate on blur, keep entered values on error, and put the error next to its field."]
    elif brief.topic == "a data table":
        brief.steps += ["Server-side pagination and sorting past a few hundred rows; keep the header sticky."]
    elif brief.topic == "a responsive layout":
        brief.steps += ["One column under 640 px, two from 768 px, the full layout from 1024 px."]
    elif brief.topic == "accessibility":
        brief.steps += ["Every control reachable by keyboard with a visible focus ring; text contrast at least 4.5:1."]
    elif brief.topic == "a dialog":
        brief.steps += ["Trap focus inside, close on Escape and return focus to the opener."]
    ui_files = [f for f in request.files if re.search(r"\.(tsx|jsx|vue|svelte|html|css|scss)$", f)]
    if ui_files:
        brief.facts.append("Files to change: " + ", ".join(ui_files[:8]) + ".")
    elif request.files:
        brief.unknowns.append("No template or component file among the files given.")


RULES = {"debug_assist": _debug, "architect_assist": _architect, "database_assist": _database, "ui_assist": _ui}


def assist_brief(request: AssistRequest, inventory: ParsedInventory) -> AssistBrief:
    """The structured brief for one assist call. Deterministic."""
    named = _mentioned(request, inventory)
    brief = AssistBrief(tool=request.tool, topic="", terms=_terms(request), services=[s.name for s in named])
    RULES[request.tool](brief, request, inventory, named)
    _service_facts(brief, [s for s in named if not any(f.startswith(f"{s.name}:") for f in brief.facts)], inventory)
    if not inventory.services:
        brief.unknowns.append("The cluster inventory is empty: import one so the answer can name real services.")
    return brief
