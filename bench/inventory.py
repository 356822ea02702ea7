"""Inventory benchmark: a generated 300-service docker-compose cluster through the whole pipeline.

Steps, each timed with ``time.perf_counter`` and reported as the median of ``--runs`` runs:

* parse + inference: ``import_text`` (safe YAML load, compose importer, kinds, patterns, edges)
* rules analysis: ``analyze`` on the parsed inventory
* Mermaid and ASCII rendering of the parsed inventory
* import into the database: ``inventory_import`` on a fresh throwaway project per run (parse,
  inference, storing the revision, regenerating the cluster diagram)
* findings from the database: ``findings_for_project`` (load the stored revision, analyse it)

The goal (SPEC issue 3) is import + analysis + diagram under 2 s; the total is the database
import (which includes the diagram) plus the findings read. Memory: the tracemalloc peak of each
pure step (one extra traced run, since tracing slows the timed runs) and the process's max RSS.

The database steps run against a test database created from the configured settings
(``config.settings.test`` unless DJANGO_SETTINGS_MODULE says otherwise) under a bench-specific
name and destroyed afterwards, so neither a developer's data nor a concurrent test run is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import yaml

GOAL_SECONDS = 2.0
SERVICES = 300

GATEWAYS = [
    ("edge-gateway", "nginx:1.27-alpine", ["80:80", "443:443"]),
    ("admin-gateway", "traefik:v3.1", ["8081:80"]),
    ("partner-api-gateway", "kong:3.7", ["8443:8443"]),
]
DOMAINS = [
    "catalog",
    "cart",
    "checkout",
    "orders",
    "payments",
    "customers",
    "identity",
    "shipping",
    "inventory",
    "search",
    "reviews",
    "pricing",
]
# 21 components per domain: 12 × 21 = 252 services.
COMPONENTS = [
    "api",
    "bff",
    "worker",
    "events",
    "read-model",
    "scheduler",
    "importer",
    "exporter",
    "validator",
    "rules",
    "projector",
    "notifier",
    "reporting",
    "sync",
    "admin",
    "audit",
    "cleanup",
    "webhooks",
    "enricher",
    "gateway-adapter",
    "metrics",
]
DATABASES = [(f"{d}-db", "postgres:16.3") for d in DOMAINS] + [
    ("reporting-warehouse", "postgres:16.3"),
    ("legacy-mysql", "mysql:8.4"),
    ("reviews-mongo", "mongo:7.0"),
    ("search-elastic", "elasticsearch:8.14.3"),
    ("audit-db", "postgres:16.3"),
    ("sessions-db", "postgres:16.3"),
]
CACHES = [
    ("catalog-cache", "redis:7.2"),
    ("cart-cache", "redis:7.2"),
    ("session-cache", "redis:7.2"),
    ("pricing-cache", "redis:7.2"),
    ("search-cache", "redis:7.2"),
    ("rate-limit-cache", "redis:7.2"),
    ("identity-cache", "redis:7.2"),
    ("page-cache", "memcached:1.6"),
    ("inventory-cache", "redis:7.2"),
    ("orders-cache", "redis:latest"),
]
BROKERS = [
    ("rabbitmq", "rabbitmq:3.13-management", "AMQP_URL", "amqp://app:${RABBIT_PASSWORD}@rabbitmq:5672/shop"),
    ("kafka", "bitnami/kafka:3.7", "KAFKA_BROKERS", "kafka:9092"),
    ("kafka-analytics", "bitnami/kafka:3.7", "ANALYTICS_KAFKA_BROKERS", "kafka-analytics:9092"),
    ("nats", "nats:2.10", "NATS_URL", "nats://nats:4222"),
    ("rabbitmq-legacy", "rabbitmq:3.12", "LEGACY_AMQP_URL", "amqp://legacy:legacy-pass@rabbitmq-legacy:5672/"),
]
EXTERNALS = [
    ("stripe", "api.stripe.com"),
    ("adyen", "checkout-test.adyen.com"),
    ("sendgrid", "api.sendgrid.com"),
    ("twilio", "api.twilio.com"),
    ("auth0", "acme.eu.auth0.com"),
    ("google-maps", "maps.googleapis.com"),
    ("dhl", "api-eu.dhl.com"),
    ("ups", "onlinetools.ups.com"),
    ("algolia", "acme-dsn.algolia.net"),
    ("segment", "api.segment.io"),
    ("s3", "s3.eu-west-1.amazonaws.com"),
    ("sentry", "o1.ingest.sentry.io"),
]


def generate_compose(seed: int = 300) -> str:
    """A deterministic 300-service docker-compose file with about three edges per service."""
    rng = random.Random(seed)
    services: dict[str, dict[str, Any]] = {}
    app_names = [f"{d}-{c}" for d in DOMAINS for c in COMPONENTS]
    total = len(GATEWAYS) + len(app_names) + len(DATABASES) + len(CACHES) + len(BROKERS) + len(EXTERNALS)
    assert total == SERVICES, total  # a generator bug, not bad input

    def run_settings(replicas: int, *, health: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"restart": "unless-stopped" if rng.random() > 0.05 else "no"}
        if health and rng.random() > 0.08:
            out["healthcheck"] = {"test": ["CMD", "wget", "-qO-", "http://localhost:8080/health"], "interval": "15s"}
        deploy: dict[str, Any] = {"replicas": replicas}
        if rng.random() > 0.1:
            deploy["resources"] = {
                "limits": {"cpus": rng.choice(["0.25", "0.5", "1"]), "memory": rng.choice(["128M", "256M", "512M"])}
            }
        out["deploy"] = deploy
        return out

    for name, image, ports in GATEWAYS:
        domain_apis = [f"{d}-bff" for d in DOMAINS] if name == "edge-gateway" else [f"{d}-admin" for d in DOMAINS[:6]]
        if name == "partner-api-gateway":
            domain_apis = ["orders-api", "catalog-api", "inventory-api", "shipping-api"]
        services[name] = {
            "image": image,
            "ports": ports,
            "networks": ["frontend", "backend"],
            "environment": {
                **{f"{t.upper().replace('-', '_')}_UPSTREAM": f"http://{t}:8080" for t in domain_apis},
                "JWT_ISSUER": "https://acme.eu.auth0.com/",
            },
            "depends_on": domain_apis,
            **run_settings(2),
        }

    broker_for = {d: BROKERS[i % 3] for i, d in enumerate(DOMAINS)}  # rabbitmq, kafka, kafka-analytics
    for index, name in enumerate(app_names):
        domain = DOMAINS[index // len(COMPONENTS)]
        component = COMPONENTS[index % len(COMPONENTS)]
        env: dict[str, str] = {"PORT": "8080", "LOG_LEVEL": "info", "SERVICE_NAME": name}
        depends: list[str] = []
        # Stateful components own the domain database; every edge is also declared by config.
        if rng.random() < 0.7:
            env["DATABASE_URL"] = f"postgres://{domain}:${{DB_PASSWORD}}@{domain}-db:5432/{domain}"
            depends.append(f"{domain}-db")
        # One or two synchronous calls, mostly inside the domain, to components declared earlier
        # (so the call graph is mostly layered, as in a real cluster), sometimes across domains.
        earlier = app_names[max(0, index - index % len(COMPONENTS)) : index] or app_names[:1]
        for _ in range(rng.choice([1, 1, 2, 2, 2])):
            target = rng.choice(earlier) if rng.random() < 0.75 else rng.choice(app_names[:index] or earlier)
            if target != name:
                env[f"{target.upper().replace('-', '_')}_URL"] = f"http://{target}:8080/api"
        if rng.random() < 0.45:
            _, _, var, url = broker_for[domain] if rng.random() < 0.9 else rng.choice(BROKERS[3:])
            env[var] = url
        if rng.random() < 0.2:
            cache, image = rng.choice(CACHES)
            if image.startswith("memcached"):
                env["MEMCACHED_SERVERS"] = f"{cache}:11211"
            else:
                env["REDIS_URL"] = f"redis://{cache}:6379/0"
        if rng.random() < 0.06:
            ext, host = rng.choice(EXTERNALS)
            env[f"{ext.upper().replace('-', '_')}_API_BASE"] = f"https://{host}/v1"
        if component == "identity" or domain == "identity" or rng.random() < 0.5:
            env["JWT_PUBLIC_KEY_URL"] = "https://acme.eu.auth0.com/.well-known/jwks.json"
        if rng.random() < 0.03:
            env["API_TOKEN"] = "tok_live_" + "".join(rng.choice("abcdef0123456789") for _ in range(24))
        tag = "latest" if rng.random() < 0.04 else f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        services[name] = {
            "image": f"ghcr.io/acme/{name}:{tag}",
            "expose": ["8080"],
            "networks": ["backend"],
            "environment": env,
            "labels": {"com.acme.domain": domain, "com.acme.team": f"team-{domain}"},
            **({"depends_on": depends} if depends else {}),
            **run_settings(rng.choice([1, 2, 2, 3])),
        }

    for name, image in DATABASES:
        port = {"mysql": 3306, "mongo": 27017, "elasticsearch": 9200}.get(image.split(":")[0], 5432)
        services[name] = {
            "image": image,
            "networks": ["backend"],
            "volumes": [f"{name}-data:/var/lib/data"],
            "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"} if image.startswith("postgres") else {},
            **({"ports": [f"{port}:{port}"]} if name in ("legacy-mysql", "reporting-warehouse") else {}),
            **run_settings(1),
        }
    for name, image in CACHES:
        services[name] = {"image": image, "networks": ["backend"], **run_settings(1)}
    for name, image, _var, _url in BROKERS:
        services[name] = {"image": image, "networks": ["backend"], **run_settings(1)}
    for name, host in EXTERNALS:
        services[name] = {
            "profiles": ["external"],
            "labels": {
                "maestro.kind": "external",
                "maestro.hosts": host,
                "maestro.description": f"{name} (third party)",
            },
        }
    document = {
        "name": "acme-300",
        "services": services,
        "networks": {"frontend": {}, "backend": {}},
        "volumes": {f"{name}-data": {} for name, _ in DATABASES},
    }
    return yaml.safe_dump(document, sort_keys=False, width=200)


# --- measuring ---------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


def _traced_peak(fn: Callable[[], Any]) -> float:
    """Peak Python heap (MB) allocated while ``fn`` runs, above what was live before."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def _max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss / 1e3  # bytes on macOS, KiB on Linux


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def measure_pure(text: str, runs: int) -> dict[str, Any]:
    from sessions_app.diagrams.ascii import render_ascii
    from sessions_app.diagrams.mermaid import render_mermaid
    from teams_app.inventory.importers import import_text
    from teams_app.inventory.rules import analyze

    steps: dict[str, Any] = {}
    parse_s, parse_all, inventory = _timed(lambda: import_text(text, "compose"), runs)
    steps["parse_inference"] = (parse_s, parse_all, lambda: import_text(text, "compose"))
    analyze_s, analyze_all, findings = _timed(lambda: analyze(inventory), runs)
    steps["rules_analysis"] = (analyze_s, analyze_all, lambda: analyze(inventory))
    mermaid_s, mermaid_all, mermaid = _timed(lambda: render_mermaid(inventory), runs)
    steps["mermaid_render"] = (mermaid_s, mermaid_all, lambda: render_mermaid(inventory))
    ascii_s, ascii_all, ascii_text = _timed(lambda: render_ascii(inventory), runs)
    steps["ascii_render"] = (ascii_s, ascii_all, lambda: render_ascii(inventory))
    return {
        "inventory": inventory,
        "findings": findings,
        "mermaid_lines": mermaid.count("\n"),
        "ascii_lines": ascii_text.count("\n"),
        "steps": {name: {"median_s": m, "runs_s": all_} for name, (m, all_, _) in steps.items()},
        "peaks_mb": {name: _traced_peak(fn) for name, (_, _, fn) in steps.items()},
    }


def measure_database(text: str, runs: int) -> dict[str, Any]:
    """Import into a throwaway test database; each run gets its own project."""
    from django.db import connection

    from bench.db import throwaway_database
    from sessions_app.models import DiagramVersion
    from teams_app.inventory.selectors import findings_for_project
    from teams_app.inventory.services import inventory_import
    from teams_app.models import Project

    with throwaway_database("inventory"):
        projects = [Project.objects.create(name=f"Bench {i}", slug=f"bench-{i}") for i in range(runs)]
        queue = iter(projects)
        import_s, import_all, revision = _timed(
            lambda: inventory_import(project=next(queue), text=text, fmt="compose", source_name="bench-compose.yml"),
            runs,
        )
        stored = (revision.services.count(), revision.dependencies.count())
        versions = DiagramVersion.objects.filter(inventory_revision__project__in=projects).count()
        findings_s, findings_all, findings = _timed(lambda: findings_for_project(project=projects[-1]), runs)
        return {
            "vendor": connection.vendor,
            "stored_services": stored[0],
            "stored_edges": stored[1],
            "diagram_versions": versions,
            "findings_from_db": len(findings),
            "steps": {
                "db_import": {"median_s": import_s, "runs_s": import_all},
                "db_findings": {"median_s": findings_s, "runs_s": findings_all},
            },
        }


LABELS = {
    "parse_inference": "parse + inference (import_text)",
    "rules_analysis": "rules analysis (analyze)",
    "mermaid_render": "Mermaid render",
    "ascii_render": "ASCII render",
    "db_import": "import into DB (inventory_import)",
    "db_findings": "findings from DB (findings_for_project)",
}


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench inventory --")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-db", action="store_true", help="Only the pure steps")
    options = parser.parse_args(args or [])
    runs = max(1, options.runs)

    _setup_django()
    text = generate_compose()
    pure = measure_pure(text, runs)
    inventory = pure["inventory"]
    steps = dict(pure["steps"])
    result: dict[str, Any] = {
        "bench": "inventory",
        "services": len(inventory.services),
        "edges": len(inventory.dependencies),
        "findings": len(pure["findings"]),
        "yaml_bytes": len(text.encode()),
        "runs": runs,
        "mermaid_lines": pure["mermaid_lines"],
        "ascii_lines": pure["ascii_lines"],
        "tracemalloc_peak_mb": {k: round(v, 1) for k, v in pure["peaks_mb"].items()},
    }
    if not options.no_db:
        db = measure_database(text, runs)
        steps.update(db.pop("steps"))
        result["database"] = db
        total = steps["db_import"]["median_s"] + steps["db_findings"]["median_s"]
        result["total_definition"] = "db_import + db_findings"
    else:
        total = sum(
            steps[k]["median_s"] for k in ("parse_inference", "rules_analysis", "mermaid_render", "ascii_render")
        )
        result["total_definition"] = "parse_inference + rules_analysis + mermaid_render + ascii_render"
    result["steps_median_s"] = {k: round(v["median_s"], 4) for k, v in steps.items()}
    result["total_s"] = round(total, 4)
    result["goal_s"] = GOAL_SECONDS
    result["within_goal"] = total < GOAL_SECONDS
    result["max_rss_mb"] = round(_max_rss_mb(), 1)
    return result


def report(result: dict[str, Any]) -> None:
    db = result.get("database")
    print(
        f"{result['services']} services, {result['edges']} edges, {result['findings']} findings, "
        f"{result['yaml_bytes'] / 1000:.0f} KB of YAML; median of {result['runs']} runs"
        + (f"; database: {db['vendor']}" if db else "")
    )
    peaks = result["tracemalloc_peak_mb"]
    print(f"  {'step':<42} {'median':>9} {'py peak':>9}")
    for key, seconds in result["steps_median_s"].items():
        peak = f"{peaks[key]:.1f} MB" if key in peaks else ""
        print(f"  {LABELS.get(key, key):<42} {seconds * 1000:>7.1f}ms {peak:>9}")
    verdict = "within" if result["within_goal"] else "OVER"
    print(f"  {'total':<42} {result['total_s'] * 1000:>7.1f}ms   = {result['total_definition']}")
    print(f"  goal: under {result['goal_s']:.0f} s → {verdict} the goal")
    print(f"  max RSS: {result['max_rss_mb']:.1f} MB")
    print(json.dumps(result, sort_keys=True))


def main(args: list[str] | None = None) -> int:
    report(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
