"""ASCII rendering of an inventory in the style of the seed's *Cluster State Visualization*.

Boxes are laid out in layers from the entry points down (longest path over the dependency
graph, cycles broken deterministically). A box's single dependency that nothing else uses sits
to its right with ``────▶`` (so pipelines read left to right, as in the seed); ``│``/``▼`` under
a box means it depends on something in the row directly below. A character grid cannot draw
every edge, so the boxes are followed by the full, sorted edge list: the picture orients, the
list is exact. Every line fits in :data:`MAX_WIDTH` columns.
"""

from __future__ import annotations

import heapq
import textwrap
import unicodedata
from collections.abc import Set as AbstractSet

from teams_app.inventory.types import ParsedInventory

from .graph import EDGE_LABELS, Edge, Node, build_graph, kind_rank

MAX_WIDTH = 120
MAX_LABEL = 22
MAX_PER_ROW = 6
GAP = 5
PAD = 2
MARK = "*"


def _clean(text: str) -> str:
    """Control characters (newlines, tabs, escapes) from user files would break the grid."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    if text.isascii():  # one column per character (control characters are cleaned out before)
        return len(text)
    return sum(_char_width(ch) for ch in text)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` display columns, ending in … when cut."""
    if display_width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _center(text: str, width: int) -> str:
    free = width - display_width(text)
    left = free // 2
    return " " * left + text + " " * (free - left)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


# --- layout -------------------------------------------------------------------------------


class _Layout:
    def __init__(self, nodes: dict[str, Node], edges: list[Edge]) -> None:
        self.nodes = nodes
        self.names = sorted(nodes)
        self.succ: dict[str, set[str]] = {n: set() for n in self.names}
        self.pred: dict[str, set[str]] = {n: set() for n in self.names}
        for e in edges:
            self.succ[e.source].add(e.target)
            self.pred[e.target].add(e.source)

    def _rank(self, name: str) -> tuple[int, str]:
        return (kind_rank(self.nodes[name].kind), name)

    def _acyclic(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """The graph without its DFS back edges, roots visited entry points first."""
        roots = sorted(self.names, key=lambda n: (bool(self.pred[n]), *self._rank(n)))
        state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
        succ: dict[str, set[str]] = {n: set() for n in self.names}
        pred: dict[str, set[str]] = {n: set() for n in self.names}
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(sorted(self.succ[root])))]
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    state[node] = 2
                    stack.pop()
                    continue
                if state.get(child) == 1:
                    continue  # back edge: closes a cycle, left out of the layering
                succ[node].add(child)
                pred[child].add(node)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(sorted(self.succ[child]))))
        return succ, pred

    def layers(self) -> list[list[str]]:
        """Node names per layer, in drawing order."""
        succ, pred = self._acyclic()
        # u → v is drawn on one row when it is u's only dependency and v's only dependant.
        chain_next = {u: next(iter(vs)) for u, vs in succ.items() if len(vs) == 1 and len(pred[next(iter(vs))]) == 1}
        chained = set(chain_next.values())
        isolated = {n for n in self.names if not self.succ[n] and not self.pred[n]}

        layer: dict[str, int] = {}
        indegree = {n: len(pred[n]) for n in self.names}
        ready = [self._rank(n) for n in self.names if indegree[n] == 0]
        heapq.heapify(ready)
        while ready:
            _, node = heapq.heappop(ready)
            layer.setdefault(node, 0)
            for child in succ[node]:
                step = 0 if chain_next.get(node) == child else 1
                layer[child] = max(layer.get(child, 0), layer[node] + step)
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, self._rank(child))

        connected = [n for n in self.names if n not in isolated]
        depth = max((layer[n] for n in connected), default=-1)
        blocks_by_layer: dict[int, list[list[str]]] = {}
        for head in connected:
            if head in chained:
                continue
            block = [head]
            while block[-1] in chain_next:
                block.append(chain_next[block[-1]])
            blocks_by_layer.setdefault(layer[head], []).append(block)

        position: dict[str, int] = {}
        result: list[list[str]] = []
        for level in range(depth + 1):
            blocks = blocks_by_layer.get(level, [])

            def key(block: list[str]) -> tuple[float, int, str]:
                placed = [position[p] for p in pred[block[0]] if p in position]
                centre = sum(placed) / len(placed) if placed else -1.0
                return (centre, *self._rank(block[0]))

            row = [name for block in sorted(blocks, key=key) for name in block]
            for name in row:
                position[name] = len(position)
            if row:
                result.append(row)
        if isolated:
            result.append(sorted(isolated, key=self._rank))
        return result


# --- drawing ------------------------------------------------------------------------------


def _box_width(labels: list[str]) -> int:
    return max(display_width(label) for label in labels) + 2 * PAD + 2


def _wrap(layer: list[str], label: dict[str, str]) -> list[list[str]]:
    rows: list[list[str]] = []
    row: list[str] = []
    for name in layer:
        candidate = [*row, name]
        width = len(candidate) * _box_width([label[n] for n in candidate]) + GAP * (len(candidate) - 1)
        if row and (width > MAX_WIDTH or len(candidate) > MAX_PER_ROW):
            rows.append(row)
            row = [name]
        else:
            row = candidate
    if row:
        rows.append(row)
    return rows


def _gap(left: str, right: str, succ: dict[str, set[str]]) -> str:
    forward, backward = right in succ[left], left in succ[right]
    if forward and backward:
        return "◀───▶"
    if forward:
        return "────▶"
    if backward:
        return "◀────"
    return " " * GAP


def _draw_rows(rows: list[list[str]], label: dict[str, str], succ: dict[str, set[str]]) -> list[str]:
    out: list[str] = []
    for index, row in enumerate(rows):
        width = _box_width([label[n] for n in row])
        inner = width - 2
        top, middle, bottom = [], [], []
        for position, name in enumerate(row):
            if position:
                top.append(" " * GAP)
                middle.append(_gap(row[position - 1], name, succ))
                bottom.append(" " * GAP)
            top.append("┌" + "─" * inner + "┐")
            middle.append("│" + _center(label[name], inner) + "│")
            bottom.append("└" + "─" * inner + "┘")
        out += ["".join(top), "".join(middle), "".join(bottom)]
        if index + 1 == len(rows):
            break
        below = set(rows[index + 1])
        centres = [p * (width + GAP) + width // 2 for p, n in enumerate(row) if succ[n] & below]
        if not centres:
            out.append("")
            continue
        for glyph in ("│", "▼"):
            line = [" "] * (centres[-1] + 1)
            for c in centres:
                line[c] = glyph
            out.append("".join(line))
    return out


def _edge_list(edges: list[Edge], full: dict[str, str]) -> list[str]:
    if not edges:
        return []
    column = min(max(display_width(full[e.source]) for e in edges), 40)
    lines = ["Connections:"]
    previous = None
    for edge in edges:
        arrow = f"──{EDGE_LABELS.get(edge.kind, 'uses')}──▶"
        source = full[edge.source]
        if edge.source != previous and display_width(source) > column:
            lines.append("  " + truncate(source, MAX_WIDTH - 2))
        if edge.source != previous and display_width(source) <= column:
            lead = "  " + _ljust(source, column)
        else:
            lead = "  " + " " * column
        previous = edge.source
        head = f"{lead} {arrow} "
        lines.append(head + truncate(full[edge.target], MAX_WIDTH - display_width(head)))
    return lines


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(_clean(text), MAX_WIDTH) or [""]


def stamp_line(timestamp: str) -> str:
    """The drawing's first line when it is stamped: ``stamp_line(t) + "\\n" + render_ascii(inv)``
    is ``render_ascii(inv, timestamp=t)``."""
    return truncate(f"[CLUSTER-SESSION: {_clean(timestamp)}]", MAX_WIDTH).rstrip()


def render_ascii(
    inv: ParsedInventory,
    *,
    title: str = "",
    focus: str = "",
    highlight_services: AbstractSet[str] = frozenset(),
    timestamp: str | None = None,
) -> str:
    """The cluster as boxes and arrows plus the complete edge list; ends with a newline.

    ``title`` replaces the "Current Architecture" heading (e.g. "Proposed Architecture");
    highlighted services carry a ``*``; ``focus`` adds the "Integration Focus" line.
    """
    nodes, edges = build_graph(inv)
    marked = {n for n in highlight_services if n in nodes}
    full = {n: _clean(n) + (MARK if n in marked else "") for n in nodes}
    label = {n: truncate(_clean(n), MAX_LABEL) + (MARK if n in marked else "") for n in nodes}

    out: list[str] = []
    if timestamp is not None:
        out.append(stamp_line(timestamp))
    heading = _clean(title).strip().rstrip(":") if title else "Current Architecture"
    out += _wrapped(f"{heading}:")
    if not nodes:
        out.append("(no services)")
    else:
        layout = _Layout(nodes, edges)
        rows = [row for layer in layout.layers() for row in _wrap(layer, label)]
        out += _draw_rows(rows, label, layout.succ)
        if marked:
            out.append(f"{MARK} new or changed")
        listing = _edge_list(edges, full)
        if listing:
            out += ["", *listing]
    if focus:
        out += ["", *_wrapped(f"Integration Focus: {focus}")]
    return "\n".join(line.rstrip() for line in out) + "\n"
