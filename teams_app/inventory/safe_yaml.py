"""Loading untrusted YAML (uploaded inventories) without letting a hostile file hurt the server.

``yaml.safe_load_all`` already refuses arbitrary Python objects, but it happily builds an
alias bomb ("billion laughs") whose expanded size is exponential in the file size, recursive
structures that send any later walker into infinite recursion, and documents nested deep enough
to exhaust the interpreter stack. The loader here counts while composing, before any Python
object exists, so a hostile file is refused in milliseconds.

Two deliberate deviations from PyYAML's YAML 1.1 defaults, both matching what Docker Compose and
kubectl (YAML 1.2 parsers) do:

* sexagesimal numbers are plain strings, so an unquoted port mapping ``- 22:22`` stays "22:22"
  instead of silently becoming the integer 1342;
* duplicate keys in a mapping are an error instead of "last one wins", so two services with the
  same name cannot quietly replace one another.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser as _PyParser
from yaml.reader import Reader
from yaml.scanner import Scanner

from teams_app.errors import ApplicationError


class _PurePythonParser(Reader, Scanner, _PyParser):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        _PyParser.__init__(self)


_Parser: type
try:  # libyaml scans and parses several times faster; composition stays in Python (below)
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = _PurePythonParser

# Real inventories nest perhaps 15 levels; this leaves room while staying far below the
# interpreter's recursion limit (the composer recurses once or twice per level).
MAX_DEPTH = 200

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

# PyYAML's YAML 1.1 int and float patterns minus the base-60 alternatives.
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.VERBOSE,
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


class _Refused(Exception):
    """Raised from inside the composer; turned into an ApplicationError with the document number."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _GuardedLoader(Composer, _Parser, SafeConstructor, yaml.resolver.Resolver):
    """Event parser (libyaml when available) + PyYAML's Python composer, which is the hook point."""

    # The C parser brings its own composer; the guarded Python one must win.
    check_node = Composer.check_node
    get_node = Composer.get_node

    def __init__(self, stream: str, *, max_aliases: int, max_nodes: int) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._max_aliases = max_aliases
        self._max_nodes = max_nodes
        self._aliases = 0
        self._depth = 0
        self._total = 0  # expanded node count of the finished documents
        # Expanded size of every composed node of the current document, keyed by id(node):
        # an alias costs the full size of what it points at, which is what makes a bomb visible.
        self._weights: dict[int, int] = {}

    def compose_document(self) -> Node:
        self._weights = {}
        node = super().compose_document()
        self._total += self._weights.get(id(node), 1)
        self._weights = {}
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > self._max_aliases:
                raise _Refused(
                    f"too many aliases (more than {self._max_aliases}); the file looks like an alias bomb",
                    event.start_mark.line + 1,
                )
            node = super().compose_node(parent, index)
            if id(node) not in self._weights:
                # The anchored node is still being composed: the alias points into itself.
                raise _Refused(f"recursive alias *{event.anchor}", event.start_mark.line + 1)
            return node

        start = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", start.line + 1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1

        weight = 1
        if isinstance(node, SequenceNode):
            weight += sum(self._weights[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                weight += self._weights[id(key)] + self._weights[id(value)]
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in seen:
                        raise _Refused(f"duplicate key {key.value!r}", key.start_mark.line + 1)
                    seen.add(key.value)
        self._weights[id(node)] = weight
        if self._total + weight > self._max_nodes:
            raise _Refused(
                f"the content expands to more than {self._max_nodes} nodes; "
                "the file is too large or an alias bomb",
                start.line + 1,
            )
        return node


# Copy the class-level table before editing it so yaml.SafeLoader itself stays untouched.
_GuardedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_GuardedLoader.add_implicit_resolver(_INT_TAG, _INT_RE, list("-+0123456789"))
_GuardedLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_RE, list("-+0123456789."))


def _yaml_error(document: int, exc: yaml.YAMLError) -> ApplicationError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    extra: dict[str, Any] = {"document": document}
    if mark is not None:
        extra["line"] = mark.line + 1
        extra["column"] = mark.column + 1
        return ApplicationError(f"Invalid YAML in document {document}, line {mark.line + 1}: {problem}", extra)
    return ApplicationError(f"Invalid YAML in document {document}: {problem}", extra)


def load_documents(
    text: str,
    *,
    max_bytes: int = 1_000_000,
    max_aliases: int = 100,
    max_nodes: int = 200_000,
) -> list[Any]:
    """Parse every YAML document of ``text`` with the safe loader; empty documents are skipped.

    Raises ApplicationError for text over ``max_bytes`` (checked before parsing), more than
    ``max_aliases`` alias uses, content expanding to more than ``max_nodes`` nodes, recursive
    aliases, excessive nesting, duplicate keys and syntax errors (naming document and line).
    """
    if not isinstance(text, str):
        raise ApplicationError("The inventory must be text.")
    # len() is a cheap lower bound of the UTF-8 size; skip encoding a huge string at all.
    size = len(text) if len(text) > max_bytes else len(text.encode("utf-8"))
    if size > max_bytes:
        raise ApplicationError(
            f"The file is too large ({size} bytes; the limit is {max_bytes} bytes).",
            {"size": size, "max_bytes": max_bytes},
        )

    loader = _GuardedLoader(text, max_aliases=max_aliases, max_nodes=max_nodes)
    documents: list[Any] = []
    number = 0  # documents as a person counts them, empty ones included
    try:
        while True:
            try:
                if not loader.check_data():
                    break
                data = loader.get_data()
            except _Refused as exc:
                where = f"document {number + 1}" + (f", line {exc.line}" if exc.line else "")
                raise ApplicationError(
                    f"Refused YAML in {where}: {exc.message}.",
                    {"document": number + 1, "line": exc.line},
                ) from None
            except yaml.YAMLError as exc:
                raise _yaml_error(number + 1, exc) from None
            except RecursionError:
                raise ApplicationError(
                    f"Refused YAML in document {number + 1}: nested too deeply.", {"document": number + 1}
                ) from None
            number += 1
            if data is not None:
                documents.append(data)
    finally:
        loader.dispose()
    return documents
