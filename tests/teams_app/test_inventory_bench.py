"""The inventory benchmark keeps measuring what it claims: a realistic 300-service cluster."""

from __future__ import annotations

from collections import Counter

from bench import __main__ as bench_main
from bench.inventory import GOAL_SECONDS, generate_compose, run
from teams_app.inventory.importers import import_text


def test_the_generated_cluster_has_300_services_of_every_kind_and_about_three_edges_each():
    text = generate_compose()
    assert text == generate_compose()  # deterministic: runs are comparable
    inventory = import_text(text)
    kinds = Counter(s.kind for s in inventory.services)
    assert len(inventory.services) == 300
    assert kinds == {"service": 252, "database": 18, "external": 12, "cache": 10, "broker": 5, "gateway": 3}
    assert 2.5 <= len(inventory.dependencies) / len(inventory.services) <= 3.5
    edge_kinds = Counter(d.kind for d in inventory.dependencies)
    assert {"sync_http", "database", "async_event", "cache"} <= set(edge_kinds)
    vias = {d.via.split(":")[0] for d in inventory.dependencies}
    assert {"depends_on", "env"} <= vias
    assert any(d.target in {"stripe", "sendgrid", "twilio", "auth0", "s3"} for d in inventory.dependencies)


def test_discovery_finds_benchmarks_and_skips_helpers():
    names = bench_main.available()
    assert "inventory" in names
    assert "db" not in names  # a helper without main() or run()
    assert bench_main.main(["no-such-bench"]) == 2


def test_a_pure_run_reports_every_step_and_the_goal():
    result = run(["--runs", "1", "--no-db"])
    assert result["services"] == 300 and result["runs"] == 1
    assert set(result["steps_median_s"]) == {"parse_inference", "rules_analysis", "mermaid_render", "ascii_render"}
    assert all(seconds > 0 for seconds in result["steps_median_s"].values())
    assert abs(result["total_s"] - sum(result["steps_median_s"].values())) < 0.001
    assert result["goal_s"] == GOAL_SECONDS and result["within_goal"] == (result["total_s"] < GOAL_SECONDS)
    assert set(result["tracemalloc_peak_mb"]) == set(result["steps_median_s"])
    assert result["max_rss_mb"] > 0


def test_each_benchmark_ends_with_the_machines_pace_before_and_after(capsys):
    assert bench_main.main(["inventory", "--", "--runs", "1", "--no-db"]) == 0

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("--- bench.inventory: done in ")
    assert "machine pace: 2,000,000 loop steps took " in last and " ms before, " in last
    assert "; a thread hand-off round trip " in last and " µs before, " in last and last.endswith(" µs after)")
    assert bench_main.pace_ms() > 0 and bench_main.handoff_us() > 0
