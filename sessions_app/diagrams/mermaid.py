"""Mermaid flowcharts of an inventory, and a guard against obviously broken or unsafe source.

The text is stored in DiagramVersion rows and compared line by line (SPEC §9), so rendering is
byte-for-byte deterministic: nodes sorted by (group, name), edges by (source, target, kind), a
fixed order of class definitions. Service names come from user files, so every label is quoted
and entity-escaped: no name can close its node, start a statement (``click``), or smuggle an
``%%{init}%%`` directive into the diagram.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet

from teams_app.inventory.types import ParsedInventory

from .graph import EDGE_LABELS, KIND_ORDER, Edge, Node, build_graph, kind_rank

INDENT = "    "

# (opening, closing) around the quoted label, by kind.
SHAPES: dict[str, tuple[str, str]] = {
    "gateway": ("([", "])"),  # stadium
    "service": ("[", "]"),  # rectangle
    "broker": ("[/", "\\]"),  # trapezoid
    "cache": ("[[", "]]"),  # subroutine
    "database": ("[(", ")]"),  # cylinder
    "external": ("{{", "}}"),  # hexagon
}

ARROWS: dict[str, str] = {
    "sync_http": "-->",
    "sync_grpc": "-->",
    "async_event": "-.->",
    "database": "==>",
    "cache": "==>",
    "unknown": "-->",
}

GROUP_TITLES: dict[str, str] = {
    "gateway": "Gateways",
    "service": "Services",
    "broker": "Brokers",
    "cache": "Caches",
    "database": "Databases",
    "external": "External",
}

CLASS_DEFS: tuple[tuple[str, str], ...] = (
    ("gateway", "fill:#e7f5ff,stroke:#1971c2,color:#0b3d91"),
    ("service", "fill:#f8f9fa,stroke:#495057,color:#212529"),
    ("broker", "fill:#fff4e6,stroke:#e8590c,color:#7a2e05"),
    ("cache", "fill:#fff0f6,stroke:#c2255c,color:#6b0f32"),
    ("database", "fill:#ebfbee,stroke:#2f9e44,color:#0b4a1f"),
    ("external", "fill:#ffffff,stroke:#868e96,color:#495057,stroke-dasharray:5 5"),
    ("highlight", "fill:#fff3bf,stroke:#f08c00,stroke-width:3px,color:#5c3c00"),
)
HIGHLIGHT_LINK_STYLE = "stroke:#f08c00,stroke-width:3px"
NO_NETWORK = "no network"

# Characters that could end a quoted label, open a shape, start an entity, a comment or a
# directive, or a statement; all become Mermaid entity codes (#NN;), rendered as the character.
_ESCAPED = frozenset('"#&;<>`%()[]{}|\\')


def escape_label(text: str) -> str:
    """``text`` made safe inside a quoted Mermaid label."""
    out = []
    for ch in text:
        if ch in _ESCAPED:
            out.append(f"#{ord(ch)};")
        elif unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029":
            out.append(" ")  # a line break would end the statement
        else:
            out.append(ch)
    return "".join(out)


def _unique_ids(prefix: str, keys: list[str]) -> dict[str, str]:
    """Stable ids ``<prefix>_<safe>`` for sorted ``keys``, suffixed _2, _3 … on collisions."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for key in sorted(keys):
        base = f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', key) or 'unnamed'}"
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        ids[key] = candidate
    return ids


def _group_of(node: Node, group_by: str) -> str:
    if group_by == "network":
        return node.networks[0] if node.networks else ""
    return node.kind


def _group_key(group: str, group_by: str) -> tuple[int, str]:
    if group_by == "network":
        return (1, "") if group == "" else (0, group)
    return (kind_rank(group), group)


def _group_title(group: str, group_by: str) -> str:
    if group_by == "network":
        return group or NO_NETWORK
    return GROUP_TITLES.get(group, group)


def render_mermaid(
    inv: ParsedInventory,
    *,
    highlight_services: AbstractSet[str] = frozenset(),
    highlight_edges: AbstractSet[tuple[str, str]] = frozenset(),
    group_by: str = "kind",
) -> str:
    """A ``flowchart LR`` of ``inv``: one subgraph per kind (or per first network).

    ``highlight_services`` and ``highlight_edges`` (source, target) mark proposed additions;
    names not in the inventory are ignored. The result ends with a newline.
    """
    if group_by not in ("kind", "network"):
        raise ValueError(f"group_by must be 'kind' or 'network', not {group_by!r}")
    nodes, edges = build_graph(inv)
    node_ids = _unique_ids("svc", list(nodes))
    groups: dict[str, list[Node]] = {}
    for node in nodes.values():
        groups.setdefault(_group_of(node, group_by), []).append(node)
    group_ids = _unique_ids("grp", list(groups))

    lines = ["flowchart LR"]
    for group in sorted(groups, key=lambda g: _group_key(g, group_by)):
        title = escape_label(_group_title(group, group_by))
        lines.append(f'{INDENT}subgraph {group_ids[group]}["{title}"]')
        for node in sorted(groups[group], key=lambda n: n.name):
            opening, closing = SHAPES.get(node.kind, SHAPES["service"])
            lines.append(f'{INDENT * 2}{node_ids[node.name]}{opening}"{escape_label(node.name)}"{closing}')
        lines.append(f"{INDENT}end")

    highlighted_links: list[int] = []
    for index, edge in enumerate(edges):
        lines.append(f"{INDENT}{_edge_line(edge, node_ids)}")
        if (edge.source, edge.target) in highlight_edges:
            highlighted_links.append(index)

    for name, style in CLASS_DEFS:
        lines.append(f"{INDENT}classDef {name} {style}")
    for kind in KIND_ORDER:
        members = sorted(node_ids[n.name] for n in nodes.values() if n.kind == kind)
        if members:
            lines.append(f"{INDENT}class {','.join(members)} {kind}")
    marked = sorted(node_ids[name] for name in highlight_services if name in node_ids)
    if marked:
        lines.append(f"{INDENT}class {','.join(marked)} highlight")
    if highlighted_links:
        lines.append(f"{INDENT}linkStyle {','.join(map(str, highlighted_links))} {HIGHLIGHT_LINK_STYLE}")
    return "\n".join(lines) + "\n"


def _edge_line(edge: Edge, node_ids: dict[str, str]) -> str:
    arrow = ARROWS.get(edge.kind, "-->")
    label = EDGE_LABELS.get(edge.kind, "uses")
    return f"{node_ids[edge.source]} {arrow}|{label}| {node_ids[edge.target]}"


# --- validation ---------------------------------------------------------------------------

MAX_SOURCE_BYTES = 100 * 1024

DIAGRAM_KEYWORDS: frozenset[str] = frozenset(
    {
        "flowchart",
        "graph",
        "sequenceDiagram",
        "classDiagram",
        "classDiagram-v2",
        "stateDiagram",
        "stateDiagram-v2",
        "erDiagram",
        "journey",
        "gantt",
        "pie",
        "gitGraph",
        "mindmap",
        "timeline",
        "quadrantChart",
        "requirementDiagram",
        "C4Context",
        "C4Container",
        "C4Component",
        "C4Dynamic",
        "C4Deployment",
        "sankey-beta",
        "xychart-beta",
        "block-beta",
        "packet-beta",
        "architecture-beta",
        "kanban",
        "radar-beta",
    }
)
FLOWCHART_DIRECTIONS = frozenset({"TB", "TD", "BT", "RL", "LR"})
# Block statements closed by ``end``, per diagram type.
BLOCK_OPENERS: dict[str, frozenset[str]] = {
    "flowchart": frozenset({"subgraph"}),
    "graph": frozenset({"subgraph"}),
    "sequenceDiagram": frozenset({"loop", "alt", "opt", "par", "critical", "break", "rect", "box"}),
}
_DIRECTIVE = re.compile(r"%%\{(.*?)\}%%", re.DOTALL)
_QUOTED = re.compile(r'"[^"]*"')
_EDGE_TEXT = re.compile(r"\|[^|]*\|")
_ASYMMETRIC_SHAPE = re.compile(r"(?<=\w)>[^\[\](){}]*\]")
_PAIRS = {")": "(", "]": "[", "}": "{"}


def validate_mermaid(source: str) -> list[str]:
    """Errors for obviously invalid or unsafe Mermaid source; empty when it looks fine.

    Not a parser: it catches what a person or a model typically gets wrong (unknown diagram
    type, unclosed subgraphs, unbalanced brackets or quotes in a flowchart line) and what must
    never reach the browser (``click`` handlers, ``javascript:`` URLs, directives or front
    matter that change ``securityLevel``), within a size limit.
    """
    size = len(source.encode("utf-8", errors="replace"))
    if size > MAX_SOURCE_BYTES:
        return [f"diagram is {size} bytes; the limit is {MAX_SOURCE_BYTES}"]
    errors: list[str] = []
    lines = source.splitlines()

    for match in _DIRECTIVE.finditer(source):
        if "securitylevel" in match.group(1).lower():
            errors.append("directives may not set securityLevel")
    if source.count("%%{") != len(_DIRECTIVE.findall(source)):
        errors.append("unterminated %%{ directive")

    index = 0
    if lines and lines[0].strip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if closing is None:
            errors.append("front matter (---) is not closed")
            return errors
        if any("securitylevel" in line.lower() for line in lines[1:closing]):
            errors.append("front matter may not set securityLevel")
        index = closing + 1

    diagram = ""
    header_line = 0
    while index < len(lines):
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("%%"):
            continue
        tokens = stripped.rstrip(";").split()
        keyword = tokens[0].rstrip(":")
        if keyword not in DIAGRAM_KEYWORDS:
            errors.append(f"line {index}: expected a diagram type (flowchart, sequenceDiagram, …), found {keyword!r}")
            return errors
        diagram, header_line = keyword, index
        if keyword in ("flowchart", "graph") and len(tokens) > 1:
            direction = tokens[1].rstrip(";")
            if direction not in FLOWCHART_DIRECTIONS:
                errors.append(f"line {index}: unknown flowchart direction {direction!r}")
        break
    if not diagram:
        errors.append("no diagram type: the source is empty or only comments")
        return errors

    openers = BLOCK_OPENERS.get(diagram, frozenset())
    is_flowchart = diagram in ("flowchart", "graph")
    open_blocks: list[tuple[str, int]] = []
    for number, line in enumerate(lines[header_line:], start=header_line + 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%%"):
            continue
        first = stripped.split()[0].rstrip(";").lower()
        if first == "click":
            errors.append(f"line {number}: click directives are not allowed")
        if openers:
            if first in openers:
                open_blocks.append((first, number))
            elif first == "end":
                if open_blocks:
                    open_blocks.pop()
                else:
                    errors.append(f"line {number}: 'end' without a matching {'/'.join(sorted(openers))}")
        if is_flowchart:
            errors.extend(_flowchart_line_errors(stripped, number))
    for opener, number in open_blocks:
        errors.append(f"line {number}: {opener} is never closed with 'end'")

    if "javascript:" in re.sub(r"\s+", "", source).lower():
        errors.append("javascript: URLs are not allowed")
    return errors


def _flowchart_line_errors(line: str, number: int) -> list[str]:
    if line.count('"') % 2:
        return [f"line {number}: unbalanced quotes"]
    text = _QUOTED.sub("", line)
    text = _EDGE_TEXT.sub("", text)
    text = _ASYMMETRIC_SHAPE.sub("", text)  # id>label] is Mermaid's one unbalanced shape
    stack: list[str] = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS and (not stack or stack.pop() != _PAIRS[ch]):
            return [f"line {number}: unbalanced brackets"]
    if stack:
        return [f"line {number}: unbalanced brackets"]
    return []
