"""Matching the words of a requirement to the names of an inventory: ``checkout`` ↔
``checkoutservice``, ``ordering`` ↔ ``ordering-api``, ``payments`` ↔ ``payment``."""

from __future__ import annotations

import re

from teams_app.inventory.types import ParsedInventory, ServiceSpec

_WORD = re.compile(r"[a-z][a-z0-9]*")
# Parts of a service name that say what it is rather than what it does.
_GENERIC = ("service", "svc", "api", "app", "server", "srv", "backend", "ms", "microservice", "worker", "v1", "v2")


def stem(word: str) -> str:
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "aeiousl":
            w = w[:-1]  # shipping → ship, running → run
        return w
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def service_stem(name: str) -> str:
    """The part of a service name that names its domain: ``checkoutservice`` → ``checkout``."""
    parts = [p for p in re.split(r"[-_.\s]+", name.lower()) if p]
    core = [p for p in parts if p not in _GENERIC] or parts
    joined = "".join(core)
    for suffix in _GENERIC:
        if joined.endswith(suffix) and len(joined) > len(suffix) + 2:
            joined = joined[: -len(suffix)]
            break
    return stem(joined)


def mentions(text: str, inventory: ParsedInventory, kinds: tuple[str, ...] = ("service", "gateway", "database", "cache", "broker", "external")) -> list[tuple[ServiceSpec, str]]:
    """Inventory services that a text names, with the word that named each; sorted by name."""
    stems: dict[str, str] = {}
    for w in words(text):
        stems.setdefault(stem(w), w)
    lowered = text.lower()
    found: list[tuple[ServiceSpec, str]] = []
    for svc in inventory.services:
        if svc.kind not in kinds:
            continue
        if re.search(rf"(?<![\w-]){re.escape(svc.name.lower())}(?![\w-])", lowered):
            found.append((svc, svc.name))
            continue
        s = service_stem(svc.name)
        if len(s) >= 3 and s in stems:
            found.append((svc, stems[s]))
    return sorted(found, key=lambda pair: pair[0].name)


def find_service(inventory: ParsedInventory, *domains: str, kinds: tuple[str, ...] = ("service", "gateway")) -> ServiceSpec | None:
    """The first service (by name) whose domain stem is one of ``domains``, tried in order."""
    for domain in domains:
        want = stem(domain)
        for svc in sorted(inventory.services, key=lambda s: s.name):
            if svc.kind in kinds and service_stem(svc.name) == want:
                return svc
    for domain in domains:  # "ordering-api" for "order": the stem starts with it
        want = stem(domain)
        for svc in sorted(inventory.services, key=lambda s: s.name):
            if svc.kind in kinds and len(want) >= 4 and service_stem(svc.name).startswith(want):
                return svc
    return None
