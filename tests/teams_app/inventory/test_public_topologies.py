"""Public topologies that others wrote (tests/fixtures/public, origins in its README): what each
imports as, and the findings that the rules analyst gives for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.rules import analyze
from teams_app.inventory.types import ParsedInventory

PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "public"


def read(*names: str) -> str:
    texts = [(PUBLIC / name).read_text(encoding="utf-8") for name in names]
    return "---\n".join(t if t.endswith("\n") else t + "\n" for t in texts)


def kinds(inv: ParsedInventory) -> dict[str, str]:
    return {s.name: s.kind for s in inv.services}


def edges(inv: ParsedInventory) -> set[tuple[str, str, str]]:
    return {(d.source, d.target, d.kind) for d in inv.dependencies}


# -- Backstage -----------------------------------------------------------------------------------

BACKSTAGE = sorted(p.name for p in (PUBLIC / "backstage-examples").glob("*.yaml"))


def test_backstage_examples_import_together() -> None:
    inv = import_text(read(*(f"backstage-examples/{n}" for n in BACKSTAGE)))
    assert kinds(inv) == {
        "artist-lookup": "service",
        "artists-db": "database",
        "different-namespace": "service",
        "wayback-archive": "service",
        "wayback-search": "service",
        "www-artist": "service",
    }
    assert edges(inv) == {
        ("artist-lookup", "artists-db", "database"),  # dependsOn: ['resource:artists-db']
        ("wayback-search", "wayback-archive", "sync_http"),  # the openapi API wayback-archive provides
        ("www-artist", "artist-lookup", "sync_http"),  # consumesApis: ['component:artist-lookup']
    }
    artist = inv.service("artist-lookup")
    assert artist.labels["system"] == "artist-engagement-portal" and artist.labels["backstage.owner"] == "team-a"
    assert inv.service("different-namespace").labels["backstage.owner"] == "team-a"  # owner: default/team-a


def test_a_per_repository_catalog_file_names_the_others_as_external_nodes() -> None:
    inv = import_text(read("backstage-examples/wayback-search-component.yaml"))
    assert kinds(inv) == {"wayback-search": "service", "wayback-archive": "external"}
    assert edges(inv) == {("wayback-search", "wayback-archive", "sync_http")}
    assert inv.warnings == [
        "Component 'wayback-search' consumes API 'wayback-archive', which is not in the file; "
        "it is shown as the external node 'wayback-archive'."
    ]
    inv = import_text(read("backstage-examples/artist-lookup-component.yaml"))
    assert kinds(inv) == {"artist-lookup": "service", "artists-db": "external"}


def test_a_catalog_gets_no_findings_about_running_containers() -> None:
    inv = import_text(read(*(f"backstage-examples/{n}" for n in BACKSTAGE)))
    rules = {f.rule for f in analyze(inv)}
    assert not rules & {"OPS001", "OPS002", "OPS004", "OPS005", "PERF001"}, rules


def test_a_file_of_groups_and_users_says_what_it_lacks() -> None:
    with pytest.raises(ApplicationError, match=r"no Component or Resource.*\(it has 1 Group, 5 Users\)"):
        import_text(read("backstage-examples/team-a-group.yaml"))
