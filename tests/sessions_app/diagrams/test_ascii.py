from __future__ import annotations

import random
import re

import pytest

from sessions_app.diagrams.ascii import MAX_WIDTH, display_width, render_ascii, stamp_line, truncate
from sessions_app.diagrams.diff import side_by_side, unified_diff
from teams_app.inventory.types import ParsedInventory
from tests.teams_app.inventory.builders import clean_cluster, extended, make_inventory, svc

LABELS = {"sync_http": "HTTP", "sync_grpc": "gRPC", "async_event": "event", "database": "data", "cache": "cache"}


def _listed_edges(text: str) -> set[tuple[str, str, str]]:
    """(source, label, target) triples read back from the Connections list."""
    lines = text.split("Connections:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    found, source = set(), ""
    for line in lines:
        match = re.match(r"^  (\S.*?)?\s*──(\w+)──▶ (.+)$", line)
        if match is None:
            source = line.strip()  # a long source name on its own line
            continue
        if match.group(1):
            source = match.group(1)
        found.add((source, match.group(2), match.group(3)))
    return found


def test_seed_layout_header_boxes_and_focus() -> None:
    inv = make_inventory(
        ["orders", "inventory", "payment", "shipping"],
        [("orders", "inventory"), ("orders", "payment"), ("inventory", "shipping"), ("payment", "shipping")],
    )
    text = render_ascii(inv, timestamp="2025-06-01 10:00 UTC", focus="payment retries")
    lines = text.splitlines()
    assert lines[0] == "[CLUSTER-SESSION: 2025-06-01 10:00 UTC]"
    assert lines[1] == "Current Architecture:"
    assert lines[2:7] == [
        "┌──────────┐",
        "│  orders  │",
        "└──────────┘",
        "      │",
        "      ▼",
    ]
    assert "│  inventory  │     │   payment   │" in lines
    assert lines[-1] == "Integration Focus: payment retries"
    assert text.endswith("\n")
    assert _listed_edges(text) == {
        ("inventory", "HTTP", "shipping"),
        ("orders", "HTTP", "inventory"),
        ("orders", "HTTP", "payment"),
        ("payment", "HTTP", "shipping"),
    }


def test_a_drawing_stamped_afterwards_is_the_drawing_rendered_with_its_stamp() -> None:
    # The synthesis draws a revision's cluster once and stamps each copy: the two must agree.
    inv = make_inventory(["orders", "payment"], [("orders", "payment")])
    stamp = "2025-06-01 10:00 UTC " + "x" * 200  # a stamp too long for one line is cut as the renderer cuts it
    assert f"{stamp_line(stamp)}\n{render_ascii(inv, focus='refunds')}" == render_ascii(inv, focus="refunds", timestamp=stamp)


def test_no_header_or_focus_unless_given_and_title_replaces_heading() -> None:
    text = render_ascii(make_inventory(["a"]), title="Proposed Architecture")
    assert text.splitlines()[0] == "Proposed Architecture:"
    assert "CLUSTER-SESSION" not in text and "Integration Focus" not in text


def test_single_dependency_sits_to_the_right_with_an_arrow() -> None:
    text = render_ascii(make_inventory(["orders", svc("orders-db", "database")], [("orders", "orders-db", "database")]))
    assert "│   orders    │────▶│  orders-db  │" in text


def test_arrows_down_mark_dependencies_in_the_row_below() -> None:
    text = render_ascii(clean_cluster())
    lines = text.splitlines()
    assert any("▼" in line for line in lines)
    for index, line in enumerate(lines):
        if "▼" in line:
            assert lines[index - 1].replace("│", "").strip() == ""  # │ directly above each ▼
            assert lines[index + 1].lstrip().startswith("┌")


def test_highlighted_services_are_marked_and_explained() -> None:
    inv = extended(clean_cluster(), ["fraud"], [("payments", "fraud")])
    text = render_ascii(inv, highlight_services={"fraud", "missing"})
    assert "fraud*" in text
    assert "* new or changed" in text
    assert ("payments", "HTTP", "fraud*") in _listed_edges(text)
    assert "missing" not in text


def test_long_names_are_truncated_in_boxes_but_complete_in_the_list() -> None:
    long_name = "payments-reconciliation-service-v2"
    text = render_ascii(make_inventory(["orders", long_name], [("orders", long_name)]))
    assert "│  payments-reconciliati…  │" in text
    assert display_width(truncate(long_name, 22)) == 22
    assert ("orders", "HTTP", long_name) in _listed_edges(text)


def _big_inventory(n: int = 30) -> ParsedInventory:
    rng = random.Random(5)
    kinds = ["service"] * 20 + ["database"] * 4 + ["cache", "broker", "external", "gateway"]
    names = [f"service-with-a-long-name-{i:02}" if i % 3 == 0 else f"svc-{i:02}" for i in range(n)]
    services = [svc(name, kinds[i % len(kinds)]) for i, name in enumerate(names)]
    edges = set()
    while len(edges) < 70:
        a, b = rng.sample(names, 2)
        edges.add((a, b, rng.choice(list(LABELS))))
    return make_inventory(services, sorted(edges))


def test_thirty_services_fit_in_120_columns_and_every_edge_is_listed() -> None:
    inv = _big_inventory()
    text = render_ascii(inv, timestamp="t", focus="x" * 300, title="A very long title " * 10)
    assert all(display_width(line) <= MAX_WIDTH for line in text.splitlines())
    expected = {(d.source, LABELS[d.kind], d.target) for d in inv.dependencies}
    assert _listed_edges(text) == expected
    boxes = sum(line.count("┌") for line in text.splitlines())
    assert boxes == 30


def test_output_is_independent_of_input_order() -> None:
    inv = _big_inventory()
    expected = render_ascii(inv, highlight_services={"svc-01"})
    rng = random.Random(9)
    for _ in range(5):
        shuffled = ParsedInventory(inv.format, list(inv.services), list(inv.dependencies))
        rng.shuffle(shuffled.services)
        rng.shuffle(shuffled.dependencies)
        assert render_ascii(shuffled, highlight_services={"svc-01"}) == expected


@pytest.mark.timeout(10)
def test_cycles_render_without_hanging() -> None:
    cycle = make_inventory(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    text = render_ascii(cycle)
    assert sum(line.count("┌") for line in text.splitlines()) == 3
    assert _listed_edges(text) == {("a", "HTTP", "b"), ("b", "HTTP", "c"), ("c", "HTTP", "a")}

    names = [f"n{i:02}" for i in range(25)]
    dense = make_inventory(names, [(a, b) for a in names for b in names if a != b])
    text = render_ascii(dense)
    assert len(_listed_edges(text)) == 25 * 24
    assert all(display_width(line) <= MAX_WIDTH for line in text.splitlines())


def test_mutual_neighbours_get_a_double_arrow() -> None:
    text = render_ascii(make_inventory(["a", "b"], [("a", "b"), ("b", "a")]))
    assert "│  a  │◀───▶│  b  │" in text


def test_empty_inventory_and_isolated_services() -> None:
    assert render_ascii(ParsedInventory("manual")) == "Current Architecture:\n(no services)\n"
    text = render_ascii(make_inventory(["a", "b", "lonely"], [("a", "b")]))
    assert "lonely" in text and "Connections:" in text


def test_names_with_control_or_wide_characters_keep_the_grid() -> None:
    text = render_ascii(make_inventory(["multi\nline\tname", "漢字サービス"], [("multi\nline\tname", "漢字サービス")]))
    lines = text.splitlines()
    box_lines = [line for line in lines if line.startswith(("┌", "│", "└"))]
    widths = {display_width(line) for line in box_lines}
    assert len(widths) == 1  # every line of the row is equally wide on screen
    assert "multi line name" in text


def test_unknown_endpoints_are_drawn() -> None:
    text = render_ascii(make_inventory(["orders"], [("orders", "stripe", "sync_http")]))
    assert "│  stripe  │" in text


# --- diff ----------------------------------------------------------------------------------


def test_unified_diff_and_side_by_side() -> None:
    before = "flowchart LR\n    a --> b\n    b --> c\n"
    after = "flowchart LR\n    a --> b\n    b --> d\n    d --> e\n"
    diff = unified_diff(before, after, "v1", "v2")
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "-    b --> c" in diff and "+    b --> d" in diff and "+    d --> e" in diff
    assert unified_diff(before, before, "v1", "v2") == ""
    assert side_by_side(before, after) == [
        ("equal", "flowchart LR", "flowchart LR"),
        ("equal", "    a --> b", "    a --> b"),
        ("replace", "    b --> c", "    b --> d"),
        ("insert", "", "    d --> e"),
    ]
    assert side_by_side("x\ny\n", "y\n") == [("delete", "x", ""), ("equal", "y", "y")]
