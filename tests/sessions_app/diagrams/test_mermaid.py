from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_app.diagrams.mermaid import (
    CLASS_DEFS,
    MAX_SOURCE_BYTES,
    escape_label,
    render_mermaid,
    validate_mermaid,
)
from teams_app.inventory.types import ParsedInventory
from tests.teams_app.inventory.builders import clean_cluster, extended, make_inventory, svc

NODE_LINE = re.compile(r"^ {8}(svc_\w+)")


def _node_lines(source: str) -> dict[str, str]:
    return {m.group(1): line for line in source.splitlines() if (m := NODE_LINE.match(line))}


def _edge_lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if re.match(r"^ {4}svc_\S+ (-->|-\.->|==>)", line)]


def test_renders_a_grouped_flowchart_with_shapes_and_edge_kinds() -> None:
    inv = extended(clean_cluster(), [svc("stripe", "external")], [("payments", "stripe", "sync_grpc")])
    source = render_mermaid(inv)
    lines = source.splitlines()

    assert lines[0] == "flowchart LR"
    assert source.endswith("\n")
    subgraphs = [line.strip() for line in lines if line.strip().startswith("subgraph")]
    assert subgraphs == [
        'subgraph grp_gateway["Gateways"]',
        'subgraph grp_service["Services"]',
        'subgraph grp_broker["Brokers"]',
        'subgraph grp_cache["Caches"]',
        'subgraph grp_database["Databases"]',
        'subgraph grp_external["External"]',
    ]
    assert sum(1 for line in lines if line.strip() == "end") == len(subgraphs)
    nodes = _node_lines(source)
    assert nodes["svc_gateway"].strip() == 'svc_gateway(["gateway"])'
    assert nodes["svc_orders"].strip() == 'svc_orders["orders"]'
    assert nodes["svc_orders_db"].strip() == 'svc_orders_db[("orders-db")]'
    assert nodes["svc_redis"].strip() == 'svc_redis[["redis"]]'
    assert nodes["svc_rabbitmq"].strip() == 'svc_rabbitmq[/"rabbitmq"\\]'
    assert nodes["svc_stripe"].strip() == 'svc_stripe{{"stripe"}}'
    edges = _edge_lines(source)
    assert "svc_gateway -->|HTTP| svc_orders" in edges
    assert "svc_payments -->|gRPC| svc_stripe" in edges
    assert "svc_orders -.->|event| svc_rabbitmq" in edges
    assert "svc_orders ==>|data| svc_orders_db" in edges
    assert "svc_orders ==>|cache| svc_redis" in edges
    assert edges == sorted(edges, key=lambda e: (e.split()[0], e.split()[2]))
    class_defs = [line.split()[1] for line in lines if line.strip().startswith("classDef")]
    assert class_defs == [name for name, _ in CLASS_DEFS]
    assert "    class svc_stripe external" in lines
    assert "classDef external" in source and "stroke-dasharray" in source
    assert validate_mermaid(source) == []


def test_unknown_edge_endpoints_become_external_nodes() -> None:
    source = render_mermaid(make_inventory(["orders"], [("orders", "fraud-api", "unknown")]))
    assert 'svc_fraud_api{{"fraud-api"}}' in source
    assert "svc_orders -->|uses| svc_fraud_api" in source


def test_output_is_independent_of_input_order() -> None:
    inv = extended(clean_cluster(), ["a-b", "a_b", svc("stripe", "external")], [("a-b", "a_b"), ("payments", "stripe")])
    expected = render_mermaid(inv, highlight_services={"a_b"}, highlight_edges={("a-b", "a_b")})
    rng = random.Random(11)
    for _ in range(5):
        shuffled = ParsedInventory(inv.format, list(inv.services), list(inv.dependencies))
        rng.shuffle(shuffled.services)
        rng.shuffle(shuffled.dependencies)
        assert render_mermaid(shuffled, highlight_services={"a_b"}, highlight_edges={("a-b", "a_b")}) == expected


def test_node_ids_are_unique_when_names_sanitise_alike() -> None:
    source = render_mermaid(make_inventory(["a-b", "a_b", "a.b", "a_b_2", "end"]))
    ids = list(_node_lines(source))
    assert len(ids) == len(set(ids)) == 5
    assert all(re.fullmatch(r"svc_[A-Za-z0-9_]+", i) for i in ids)
    assert 'svc_end["end"]' in source  # the reserved word only ever appears prefixed


def test_hostile_names_cannot_break_out_of_their_label() -> None:
    hostile = 'a"];click x'
    others = [
        'b"] --> c\nclick y call alert(1)',
        "x`**md**`<img src=x onerror=alert(1)>",
        '%%{init: {"securityLevel": "loose"}}%%',
    ]
    inv = make_inventory([hostile, *others], [(hostile, others[0])])
    source = render_mermaid(inv, group_by="network")

    assert validate_mermaid(source) == []
    for line in source.splitlines():
        assert not line.strip().lower().startswith("click")
    for line in _node_lines(source).values():
        assert line.count('"') == 2
        label = re.sub(r"#\d+;", "", line.split('"')[1])  # entity codes are the only escapes
        assert not set(label) & set('"<>`;[](){}%|#')
    assert "%%{" not in source
    assert escape_label(hostile) == "a#34;#93;#59;click x"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6, unique=True))
def test_any_names_render_valid_mermaid(names: list[str]) -> None:
    inv = make_inventory(
        [svc(n, networks=[n]) for n in names], [(a, b) for a, b in zip(names, names[1:], strict=False)]
    )
    for group_by in ("kind", "network"):
        source = render_mermaid(inv, group_by=group_by, highlight_services=set(names))
        assert validate_mermaid(source) == []
        assert len(_node_lines(source)) == len(names)
        assert all(line.count('"') == 2 for line in _node_lines(source).values())


def test_highlighted_services_and_edges() -> None:
    inv = extended(clean_cluster(), ["fraud"], [("payments", "fraud", "sync_http")])
    source = render_mermaid(
        inv,
        highlight_services={"fraud", "not-in-inventory"},
        highlight_edges={("payments", "fraud"), ("x", "y")},
    )
    lines = source.splitlines()
    assert "    class svc_fraud highlight" in lines
    edges = _edge_lines(source)
    index = edges.index("svc_payments -->|HTTP| svc_fraud")
    assert lines[-1] == f"    linkStyle {index} stroke:#f08c00,stroke-width:3px"
    # highlight is applied last so its style wins over the kind's
    assert lines.index("    class svc_fraud highlight") > lines.index(
        "    class svc_fraud,svc_orders,svc_payments service"
    )


def test_no_highlight_lines_without_highlights() -> None:
    source = render_mermaid(clean_cluster())
    assert " highlight" not in source.split("classDef highlight")[1]
    assert "linkStyle" not in source


def test_group_by_network_uses_first_network() -> None:
    inv = make_inventory([svc("api", networks=["front", "back"]), svc("db", "database", networks=["back"]), "loose"])
    source = render_mermaid(inv, group_by="network")
    assert [line.strip() for line in source.splitlines() if "subgraph" in line] == [
        'subgraph grp_back["back"]',
        'subgraph grp_front["front"]',
        'subgraph grp_unnamed["no network"]',
    ]
    assert validate_mermaid(source) == []


def test_rejects_unknown_grouping() -> None:
    with pytest.raises(ValueError):
        render_mermaid(clean_cluster(), group_by="team")


def test_empty_inventory_is_still_valid() -> None:
    source = render_mermaid(ParsedInventory("manual"))
    assert source.startswith("flowchart LR\n")
    assert validate_mermaid(source) == []


# --- validate_mermaid ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "flowchart TD\n  A --> B\n",
        "%% comment\n\n%%{init: {'theme': 'dark'}}%%\ngraph LR;\n  A>asym] -- text --> B{ok?}\n  B -->|yes| C[(db)]\n",
        'flowchart LR\n  subgraph one ["Title (x)"]\n    G{{hex}} -.-> H[/trap\\]\n  end\n  style G fill:#f9f\n',
        '---\ntitle: Orders\n---\nsequenceDiagram\n  loop every minute\n    A->>B: ping "hi\n  end\n',
        "erDiagram\n  CUSTOMER ||--o{ ORDER : places\n",
        "classDiagram\n  class Animal {\n    +int age\n  }\n",
    ],
)
def test_valid_sources_pass(source: str) -> None:
    assert validate_mermaid(source) == []


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("flowchart LR\n  subgraph a\n    x --> y\n", "subgraph is never closed"),
        ("flowchart LR\n  x --> y\n  end\n", "'end' without a matching subgraph"),
        ('flowchart LR\n  A --> B\n  click A "https://example.com"\n', "click directives are not allowed"),
        ('flowchart LR\n  A["x"] --> B\n  CLICK B callback\n', "click directives are not allowed"),
        ('flowchart LR\n  A[link] --> B\n  %% java script\n  B["javas\tcript:alert(1)"]\n', "javascript: URLs"),
        ('%%{init: {"securityLevel": "loose"}}%%\nflowchart LR\n  A --> B\n', "may not set securityLevel"),
        (
            "---\nconfig:\n  securityLevel: loose\n---\nflowchart LR\n  A --> B\n",
            "front matter may not set securityLevel",
        ),
        ('%%{init: {"theme": "dark"}\nflowchart LR\n', "unterminated %%{ directive"),
        ('flowchart LR\n  A["open] --> B\n', "unbalanced quotes"),
        ("flowchart LR\n  A[open --> B\n", "unbalanced brackets"),
        ("flowchart LR\n  A(open] --> B\n", "unbalanced brackets"),
        ("flowchart XY\n  A --> B\n", "unknown flowchart direction"),
        ("<script>alert(1)</script>\n", "expected a diagram type"),
        ("\n%% only a comment\n", "no diagram type"),
        ("", "no diagram type"),
        ("sequenceDiagram\n  alt ok\n    A->>B: hi\n", "alt is never closed"),
    ],
)
def test_invalid_sources_are_reported(source: str, fragment: str) -> None:
    errors = validate_mermaid(source)
    assert any(fragment in e for e in errors), errors


def test_oversized_source_is_rejected_without_scanning() -> None:
    source = "flowchart LR\n" + "  A --> B\n" * (MAX_SOURCE_BYTES // 10 + 1)
    errors = validate_mermaid(source)
    assert len(errors) == 1 and "limit" in errors[0]


def test_errors_carry_line_numbers() -> None:
    errors = validate_mermaid("flowchart LR\n  A --> B\n  subgraph s\n  C[x --> D\n")
    assert "line 4: unbalanced brackets" in errors
    assert "line 3: subgraph is never closed with 'end'" in errors
