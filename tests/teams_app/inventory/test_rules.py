from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teams_app.inventory.rules import (
    RULES,
    analyze,
    findings_for_roles,
    rules_reference,
    rules_reference_markdown,
    summarize,
)
from teams_app.inventory.rules.devops import image_tag
from teams_app.inventory.rules.security import literal_secret, url_credentials
from teams_app.inventory.types import (
    EDGE_KINDS,
    ROLE_LABELS,
    ROLES,
    SERVICE_KINDS,
    SEVERITIES,
    DependencySpec,
    Finding,
    ParsedInventory,
    PortSpec,
    ServiceSpec,
)
from tests.teams_app.inventory.builders import (
    clean_cluster,
    extended,
    make_inventory,
    svc,
    updated,
    without_edges,
)


@dataclass
class Case:
    trigger: Callable[[], ParsedInventory]
    clean: Callable[[], ParsedInventory]
    services: tuple[str, ...]  # the services the finding must name
    why: str  # a fragment the one-line why must contain


def _chain(*names: str) -> list[tuple[str, str, str]]:
    return [(a, b, "sync_http") for a, b in zip(names, names[1:], strict=False)]


def _fan_in() -> ParsedInventory:
    callers = [f"caller-{i}" for i in range(3)]
    return extended(
        clean_cluster(), callers, [(c, "payments", "sync_http") for c in callers] + [("gateway", c) for c in callers]
    )


def _fan_out() -> ParsedInventory:
    targets = ["audit", "catalog", "users"]
    return extended(clean_cluster(), targets, [("orders", t, "sync_http") for t in targets])


CASES: dict[str, Case] = {
    # pattern
    "PAT001": Case(
        clean_cluster,
        lambda: make_inventory([svc("a", comm=[]), svc("b", comm=[])], [("a", "b")]),
        ("gateway", "orders", "payments"),
        "rest is the dominant communication pattern (3 of 3 services)",
    ),
    "PAT002": Case(
        lambda: updated(clean_cluster(), "payments", comm=["grpc"]),
        clean_cluster,
        ("payments",),
        "payments communicates via grpc while the dominant pattern is rest",
    ),
    "PAT003": Case(
        lambda: extended(
            clean_cluster(), [svc("search-db", "database", storage="mongodb")], [("payments", "search-db", "database")]
        ),
        clean_cluster,
        ("search-db",),
        "search-db uses mongodb while the dominant storage engine is postgresql (2 databases)",
    ),
    "PAT004": Case(
        lambda: updated(clean_cluster(), "payments", auth=["api_key"]),
        clean_cluster,
        ("payments",),
        "payments authenticates with api_key while the dominant auth pattern is jwt",
    ),
    "PAT005": Case(
        lambda: updated(clean_cluster(), "payments", comm=[]),
        clean_cluster,
        ("payments",),
        "payments has no detectable communication pattern",
    ),
    # integration
    "INT001": Case(
        clean_cluster,
        lambda: make_inventory(["a", "b"], [("a", "b")]),
        ("orders",),
        "orders has 5 integration points (1 inbound: gateway; 4 outbound:",
    ),
    "INT002": Case(
        lambda: extended(clean_cluster(), ["bank"], [("payments", "bank", "sync_grpc")]),
        clean_cluster,
        ("bank", "gateway", "orders", "payments"),
        "synchronous call chain of 3 hops: gateway → orders → payments → bank",
    ),
    "INT003": Case(
        lambda: extended(clean_cluster(), ["lonely"]),
        lambda: extended(clean_cluster(), [svc("spare-db", "database")]),
        ("lonely",),
        "lonely has no integration points",
    ),
    "INT004": Case(
        lambda: extended(clean_cluster(), [], [("orders", "fraud-api", "sync_http")]),
        clean_cluster,
        ("fraud-api", "orders"),
        "orders depends on fraud-api, which is not in the inventory",
    ),
    # dataflow
    "DAT001": Case(
        lambda: extended(clean_cluster(), [], [("payments", "orders-db", "database")]),
        clean_cluster,
        ("orders", "orders-db", "payments"),
        "orders-db is shared by orders and payments",
    ),
    "DAT002": Case(
        lambda: extended(clean_cluster(), [], [("payments", "orders", "sync_http")]),
        clean_cluster,
        ("orders", "payments"),
        "orders → payments → orders form a dependency cycle",
    ),
    "DAT003": Case(
        _fan_in,
        clean_cluster,
        ("caller-0", "caller-1", "caller-2", "orders", "payments"),
        "payments is a fan-in hotspot: 4 services depend on it",
    ),
    "DAT004": Case(
        lambda: extended(clean_cluster(), [svc("kafka", "broker")]),
        clean_cluster,
        ("kafka",),
        "kafka is a broker with no producers or consumers",
    ),
    "DAT005": Case(
        lambda: without_edges(clean_cluster(), ("payments", "rabbitmq")),
        clean_cluster,
        ("orders", "rabbitmq"),
        "rabbitmq is used only by orders",
    ),
    "DAT006": Case(
        lambda: extended(clean_cluster(), [svc("legacy-db", "database")]),
        clean_cluster,
        ("legacy-db",),
        "legacy-db has no clients",
    ),
    # security
    "SEC001": Case(
        lambda: updated(clean_cluster(), "orders-db", host_ports=[5432]),
        clean_cluster,
        ("orders-db",),
        "orders-db (database) is published on host port 5432; databases should be reachable only on the internal network",
    ),
    "SEC002": Case(
        lambda: updated(clean_cluster(), "orders", environment={"DB_PASSWORD": "hunter2", "JWT_SECRET": "s3cr3t"}),
        lambda: updated(
            clean_cluster(),
            "orders",
            environment={
                "DB_PASSWORD": "${DB_PASSWORD}",
                "JWT_SECRET": "secret:orders/jwt",
                "API_KEY": "",
                "TOKEN_TTL": "3600",
                "DB_PASSWORD_FILE": "/run/secrets/db",
            },
        ),
        ("orders",),
        "orders sets DB_PASSWORD, JWT_SECRET to literal values in its environment",
    ),
    "SEC006": Case(
        lambda: updated(clean_cluster(), "orders", environment={"MYSQL_ALLOW_EMPTY_PASSWORD": "true"}),
        lambda: updated(clean_cluster(), "orders", environment={"MYSQL_ALLOW_EMPTY_PASSWORD": "false"}),
        ("orders",),
        "orders sets MYSQL_ALLOW_EMPTY_PASSWORD=true: it accepts connections without a password",
    ),
    "SEC007": Case(
        clean_cluster,
        lambda: updated(clean_cluster(), "gateway", ports=[PortSpec(443, 443, host_ip="127.0.0.1")]),
        ("gateway",),
        "gateway is reachable from outside on host port 443",
    ),
    "SEC003": Case(
        lambda: updated(clean_cluster(), "gateway", auth=[]),
        clean_cluster,
        ("gateway",),
        "gateway is internet-facing (gateway, host port 443) and has no detectable auth pattern",
    ),
    "SEC004": Case(
        lambda: updated(clean_cluster(), "payments", auth=[]),
        clean_cluster,
        ("payments",),
        "payments has no detectable auth pattern while 2 of 3 services use one (jwt)",
    ),
    "SEC005": Case(
        lambda: updated(
            clean_cluster(), "orders", environment={"DATABASE_URL": "postgresql://orders:s3cret@orders-db:5432/orders"}
        ),
        lambda: updated(
            clean_cluster(),
            "orders",
            environment={"DATABASE_URL": "postgresql://orders:${DB_PASSWORD}@orders-db:5432/orders"},
        ),
        ("orders",),
        "orders embeds credentials in DATABASE_URL (postgresql://orders:***@orders-db:5432/orders)",
    ),
    # performance
    "PERF001": Case(
        lambda: updated(clean_cluster(), "payments", replicas=1),
        clean_cluster,
        ("payments",),
        "payments runs a single replica and is on the gateway's request path (gateway → orders → payments)",
    ),
    "PERF002": Case(
        lambda: extended(clean_cluster(), ["bank", "ledger"], _chain("payments", "bank", "ledger")),
        lambda: extended(clean_cluster(), ["bank"], _chain("payments", "bank")),
        ("bank", "gateway", "ledger", "orders", "payments"),
        "gateway → orders → payments → bank → ledger is 4 synchronous hops deep",
    ),
    "PERF003": Case(
        _fan_out,
        clean_cluster,
        ("audit", "catalog", "orders", "payments", "users"),
        "orders calls 4 services synchronously (audit, catalog, payments, users)",
    ),
    "PERF004": Case(
        lambda: without_edges(clean_cluster(), ("orders", "redis")),
        clean_cluster,
        ("redis",),
        "redis is a cache no service uses",
    ),
    "PERF005": Case(
        lambda: extended(clean_cluster(), [], [("payments", "orders-db", "database")]),
        clean_cluster,
        ("orders-db", "payments"),
        "payments reads orders-db without a cache while orders caches it in redis",
    ),
    # devops
    "OPS001": Case(
        lambda: updated(clean_cluster(), "orders", healthcheck=False),
        clean_cluster,
        ("orders",),
        "orders has no healthcheck",
    ),
    "OPS002": Case(
        lambda: updated(clean_cluster(), "orders", image="acme/orders:latest"),
        lambda: updated(clean_cluster(), "orders", image="", build="./orders"),
        ("orders",),
        "orders runs image acme/orders:latest; pin a version instead of latest",
    ),
    "OPS003": Case(
        lambda: updated(clean_cluster(), "orders", restart=""),
        lambda: updated(clean_cluster(format="k8s"), "orders", restart=""),
        ("orders",),
        "orders has no restart policy",
    ),
    "OPS004": Case(
        lambda: updated(clean_cluster(), "orders", resources={}),
        clean_cluster,
        ("orders",),
        "orders has no CPU or memory limits",
    ),
    "OPS005": Case(
        lambda: updated(clean_cluster(), "orders", image="acme/orders:main"),
        clean_cluster,
        ("orders",),
        "orders runs image acme/orders:main; the main tag moves",
    ),
}

RULES_BY_ID = {r.id: r for r in RULES}


def _of(rule_id: str, inv: ParsedInventory) -> list[Finding]:
    return [f for f in analyze(inv) if f.rule == rule_id]


def test_every_rule_has_a_trigger_case() -> None:
    assert set(CASES) == set(RULES_BY_ID)


@pytest.mark.parametrize("rule_id", sorted(RULES_BY_ID))
def test_rule_fires_on_trigger_and_not_on_clean_variant(rule_id: str) -> None:
    case = CASES[rule_id]
    rule = RULES_BY_ID[rule_id]

    fired = _of(rule_id, case.trigger())

    assert fired, f"{rule_id} did not fire on its trigger inventory"
    assert any(f.why.find(case.why) >= 0 and set(case.services) <= set(f.services) for f in fired), [
        f.why for f in fired
    ]
    for finding in fired:
        assert (finding.severity, finding.role) == (rule.severity, rule.role)
        assert finding.services == tuple(sorted(set(finding.services)))
        assert finding.why and "\n" not in finding.why
    assert _of(rule_id, case.clean()) == []


def test_clean_cluster_has_no_warnings_or_criticals() -> None:
    assert [f for f in analyze(clean_cluster()) if f.severity != "info"] == []


# --- registry and public API -----------------------------------------------------------------


def test_registry_metadata() -> None:
    ids = [r.id for r in RULES]
    assert len(RULES) >= 22
    assert len(ids) == len(set(ids))
    prefixes = {
        "pattern": "PAT",
        "integration": "INT",
        "dataflow": "DAT",
        "security": "SEC",
        "performance": "PERF",
        "devops": "OPS",
    }
    for rule in RULES:
        assert rule.role in ROLES and rule.severity in SEVERITIES
        assert rule.id.startswith(prefixes[rule.role]) and rule.id[len(prefixes[rule.role]) :].isdigit()
        assert rule.title and rule.description
        doc = (rule.check.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{rule.id} needs a one-line docstring"
    assert {r.role for r in RULES} == set(ROLES)


def test_analyze_orders_by_severity_then_rule_then_services() -> None:
    inv = extended(
        updated(clean_cluster(), "orders-db", host_ports=[5432]),
        ["lonely", svc("legacy-db", "database")],
        [("payments", "orders", "sync_http")],
    )
    findings = analyze(inv)
    rank = {"critical": 0, "warning": 1, "info": 2}
    keys = [(rank[f.severity], f.rule, f.services) for f in findings]
    assert keys == sorted(keys)
    assert findings[0].severity == "critical"
    assert len(findings) == len(set(findings))


def test_analyze_is_independent_of_declaration_order() -> None:
    inv = extended(
        _fan_in(), ["bank", "ledger", "lonely"], _chain("payments", "bank", "ledger") + [("ledger", "orders")]
    )
    shuffled = ParsedInventory(inv.format, list(inv.services), list(inv.dependencies))
    rng = random.Random(3)
    rng.shuffle(shuffled.services)
    rng.shuffle(shuffled.dependencies)
    assert analyze(shuffled) == analyze(inv)


def test_findings_for_roles_keeps_order_and_filters() -> None:
    findings = analyze(extended(updated(clean_cluster(), "orders", healthcheck=False), ["lonely"]))
    selected = findings_for_roles(findings, ["devops", "integration"])
    assert selected == [f for f in findings if f.role in ("devops", "integration")]
    assert {f.role for f in selected} == {"devops", "integration"}
    assert findings_for_roles(findings, []) == []


def test_summarize_counts_by_severity_and_role() -> None:
    findings = [
        Finding("SEC001", "critical", "security", ("db",), "x"),
        Finding("OPS001", "warning", "devops", ("a",), "y"),
        Finding("OPS004", "info", "devops", ("a",), "z"),
    ]
    summary = summarize(findings)
    assert summary["total"] == 3
    assert summary["by_severity"] == {"critical": 1, "warning": 1, "info": 1}
    by_role = summary["by_role"]
    assert isinstance(by_role, dict)
    assert list(by_role) == list(ROLES)
    assert by_role["devops"] == {"label": ROLE_LABELS["devops"], "total": 2, "critical": 0, "warning": 1, "info": 1}
    assert by_role["pattern"]["total"] == 0
    assert summarize([])["by_severity"] == {"critical": 0, "warning": 0, "info": 0}


def test_rules_reference_rows_and_markdown() -> None:
    rows = rules_reference()
    assert [r["id"] for r in rows] == [r.id for r in RULES]
    assert set(rows[0]) == {"id", "role", "role_label", "severity", "title", "description"}
    assert all(r["role_label"] == ROLE_LABELS[r["role"]] for r in rows)
    markdown = rules_reference_markdown()
    assert all(f"| {r.id} |" in markdown for r in RULES)
    assert all(f"## {label}" in markdown for label in ROLE_LABELS.values())


# --- rule details ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("POSTGRES_PASSWORD", "postgres", True),
        ("GITHUB_TOKEN", "ghp_abc", True),
        ("stripe_api_key", "sk_live_x", True),
        ("PRIVATE_KEY", "-----BEGIN", True),
        ("DB_PASSWORD", "${DB_PASSWORD:-changeme}", True),
        ("DB_PASSWORD", "${DB_PASSWORD}", False),
        ("DB_PASSWORD", "$DB_PASSWORD", False),
        ("DB_PASSWORD", "${DB_PASSWORD:?required}", False),
        ("DB_PASSWORD", "${DB_PASSWORD:-}", False),
        ("DB_PASSWORD", "secret:orders-db/password", False),
        ("DB_PASSWORD", "", False),
        ("DB_PASSWORD", "   ", False),
        ("DB_PASSWORD_FILE", "/run/secrets/db", False),
        ("TOKEN_TTL", "3600", False),
        ("LOG_LEVEL", "debug", False),
    ],
)
def test_literal_secret_detection(key: str, value: str, expected: bool) -> None:
    assert literal_secret(key, value) is expected


def test_plaintext_secret_value_never_appears_in_why() -> None:
    inv = updated(clean_cluster(), "orders", environment={"DB_PASSWORD": "hunter2-very-secret"})
    (finding,) = _of("SEC002", inv)
    assert "hunter2" not in finding.why
    assert "DB_PASSWORD" in finding.why


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgres://app:pw@db:5432/app", "postgres://app:***@db:5432/app"),
        ("amqp://guest:guest@rabbitmq:5672/", "amqp://guest:***@rabbitmq:5672/"),
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("mysql://u:pw@db/app?password=again", "mysql://u:***@db/app"),
        ("postgres://app:${DB_PASSWORD}@db/app", None),
        ("postgres://db:5432/app", None),
        ("http://orders:8080/api", None),
    ],
)
def test_url_credentials_are_masked(value: str, expected: str | None) -> None:
    assert url_credentials(value) == expected


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("postgres", ""),
        ("postgres:16", "16"),
        ("localhost:5000/orders", ""),
        ("localhost:5000/orders:1.2", "1.2"),
        ("ghcr.io/acme/orders:latest", "latest"),
        ("postgres@sha256:abc", None),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_untagged_image_is_flagged_but_external_and_digest_are_not() -> None:
    inv = extended(
        updated(clean_cluster(), "orders", image="acme/orders"),
        [svc("stripe", "external", image="stripe"), svc("pinned", image="acme/pinned@sha256:abc")],
        [("payments", "stripe"), ("orders", "pinned")],
    )
    assert [f.services for f in _of("OPS002", inv)] == [("orders",)]
    assert "no tag" in _of("OPS002", inv)[0].why


def test_external_services_are_skipped_by_devops_and_security_rules() -> None:
    inv = extended(
        clean_cluster(), [svc("stripe", "external", environment={"API_KEY": "sk_live"})], [("payments", "stripe")]
    )
    named = {s for f in analyze(inv) if f.role in ("devops", "security") for s in f.services}
    assert "stripe" not in named


def test_cycle_names_a_shortest_cycle_and_the_whole_group() -> None:
    inv = make_inventory(
        ["a", "b", "c", "d"],
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "b")],
    )
    (finding,) = _of("DAT002", inv)
    assert finding.services == ("a", "b", "c", "d")
    assert finding.why.startswith("a → b → c → a form a dependency cycle (strongly connected: a, b, c, d)")


def test_self_dependency_is_not_a_cycle() -> None:
    inv = extended(clean_cluster(), [], [("orders", "orders", "sync_http")])
    assert _of("DAT002", inv) == []


@pytest.mark.timeout(20)
def test_dense_graph_is_analysed_quickly_and_chains_are_bounded() -> None:
    names = [f"s{i:02}" for i in range(16)]
    inv = make_inventory(names, [(a, b) for a in names for b in names if a != b])
    findings = analyze(inv)
    assert len([f for f in findings if f.rule == "INT002"]) <= 10
    assert len([f for f in findings if f.rule == "DAT002"]) == 1


def test_single_replica_reasons() -> None:
    inv = make_inventory(
        [svc("a", replicas=1), svc("b", replicas=1), svc("shared", replicas=1), svc("scaled", replicas=0)],
        [("a", "shared"), ("b", "shared"), ("a", "scaled"), ("b", "scaled")],
    )
    (finding,) = _of("PERF001", inv)
    assert finding.why == "shared runs a single replica and receives synchronous calls from 2 services (a, b)"


def test_tied_storage_engines_are_reported_once() -> None:
    inv = make_inventory(
        ["a", "b", svc("pg", "database"), svc("mongo", "database", storage="mongodb")],
        [("a", "pg", "database"), ("b", "mongo", "database")],
    )
    (finding,) = _of("PAT003", inv)
    assert finding.why == "storage engines are mixed with no dominant one: mongodb (mongo); postgresql (pg)"


def test_rules_tolerate_odd_inputs() -> None:
    inv = ParsedInventory(
        "manual",
        services=[
            ServiceSpec("a", patterns={"communication": "rest", "auth": None, "storage": 5}),  # type: ignore[dict-item]
            ServiceSpec("a", kind="database"),  # duplicate: first wins
            ServiceSpec("b", patterns={}),
        ],
        dependencies=[DependencySpec("a", "b", "weird"), DependencySpec("", "b"), DependencySpec("b", "ghost")],
    )
    findings = analyze(inv)
    assert any(f.rule == "INT004" and "ghost" in f.services for f in findings)


_names = st.sampled_from(["api", "orders", "pay", "db", "cache", "mq", "ext", "x"])


@st.composite
def _inventories(draw: st.DrawFn) -> ParsedInventory:
    names = draw(st.lists(_names, min_size=0, max_size=8, unique=True))
    services = [
        svc(
            n,
            draw(st.sampled_from(SERVICE_KINDS)),
            comm=draw(st.lists(st.sampled_from(["rest", "grpc", "amqp"]), unique=True)),
            auth=draw(st.lists(st.sampled_from(["jwt", "api_key"]), unique=True)),
            replicas=draw(st.integers(0, 3)),
            healthcheck=draw(st.booleans()),
            environment=draw(st.dictionaries(st.sampled_from(["DB_PASSWORD", "URL", "TOKEN"]), st.text(max_size=12))),
        )
        for n in names
    ]
    pool = names + ["ghost"]
    edges = draw(
        st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(EDGE_KINDS)), max_size=20)
    )
    return make_inventory(services, edges)


@settings(max_examples=150, deadline=None)
@given(_inventories(), st.randoms(use_true_random=False))
def test_analyze_never_crashes_and_is_order_independent(inv: ParsedInventory, rnd: random.Random) -> None:
    findings = analyze(inv)
    shuffled = ParsedInventory(inv.format, list(inv.services), list(inv.dependencies))
    rnd.shuffle(shuffled.services)
    rnd.shuffle(shuffled.dependencies)
    assert analyze(shuffled) == findings
    assert all(f.role in ROLES and f.severity in SEVERITIES and "\n" not in f.why for f in findings)
