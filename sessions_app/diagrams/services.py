"""Diagram versions: generated from the inventory, or edited by hand. Every change is a new version."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from sessions_app.diagrams.ascii import render_ascii
from sessions_app.diagrams.mermaid import render_mermaid, validate_mermaid
from sessions_app.models import Diagram, DiagramVersion
from teams_app.errors import ApplicationError
from teams_app.inventory.store import revision_to_inventory
from teams_app.models import InventoryRevision, Project

CLUSTER_TITLE = "Current cluster"
SOURCE_UNCHANGED = "The Mermaid source is unchanged: no new version was saved."


def _cluster_diagram(project: Project) -> Diagram:
    diagram, _ = Diagram.objects.get_or_create(
        project=project,
        kind=Diagram.Kind.CLUSTER,
        session=None,
        defaults={"title": CLUSTER_TITLE},
    )
    return diagram


def _next_number(diagram: Diagram) -> int:
    last = diagram.versions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def diagram_refresh_from_inventory(
    *, revision: InventoryRevision, user: AbstractBaseUser | None = None
) -> DiagramVersion | None:
    """A new version of the project's cluster diagram from this revision; none if the text is unchanged."""
    diagram = _cluster_diagram(revision.project)
    Diagram.objects.select_for_update().filter(pk=diagram.pk).get()
    inventory = revision_to_inventory(revision)
    mermaid = render_mermaid(inventory)
    latest = diagram.versions.order_by("-number").first()
    if latest is not None and latest.mermaid == mermaid:
        return None
    return DiagramVersion.objects.create(
        diagram=diagram,
        number=_next_number(diagram),
        mermaid=mermaid,
        ascii=render_ascii(inventory),
        inventory_revision=revision,
        author_kind=DiagramVersion.Author.SYSTEM,
        note=f"Generated from inventory revision {revision.number}",
    )


@transaction.atomic
def diagram_version_save(*, diagram: Diagram, mermaid: str, user: AbstractBaseUser, note: str = "") -> DiagramVersion:
    """A hand edit of the Mermaid source, validated before saving."""
    mermaid = (mermaid or "").replace("\r\n", "\n").strip() + "\n"
    errors = validate_mermaid(mermaid)
    if errors:
        raise ApplicationError(
            "The Mermaid source is not valid: " + "; ".join(errors),
            {"field": "mermaid"},
        )
    diagram = Diagram.objects.select_for_update().get(pk=diagram.pk)
    latest = diagram.versions.order_by("-number").first()
    if latest is not None and latest.mermaid == mermaid:
        raise ApplicationError(SOURCE_UNCHANGED, {"field": "mermaid"})
    return DiagramVersion.objects.create(
        diagram=diagram,
        number=_next_number(diagram),
        mermaid=mermaid,
        ascii="",  # the ASCII view is drawn from an inventory, not from Mermaid text
        inventory_revision=latest.inventory_revision if latest else None,
        author_kind=DiagramVersion.Author.USER,
        author_user=user,
        note=(note or "Edited by hand")[:300],
    )


def diagram_current_version(*, project: Project) -> DiagramVersion | None:
    return (
        DiagramVersion.objects.filter(diagram__project=project, diagram__kind=Diagram.Kind.CLUSTER)
        .order_by("-number")
        .first()
    )
