"""Writes of the cluster inventory. Each import or edit is a new, complete revision."""

from __future__ import annotations

from dataclasses import replace

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.inference import infer
from teams_app.inventory.store import revision_to_inventory, spec_to_row
from teams_app.inventory.types import EDGE_KINDS, SERVICE_KINDS, DependencySpec, ParsedInventory
from teams_app.models import SERVICE_NAME, InventoryRevision, Project, Service, ServiceDependency

NO_INVENTORY = "Import an inventory first: there is nothing to edit yet."
UNKNOWN_SERVICE = "There is no service named {name} in the current inventory."
EDGE_EXISTS = "{source} already depends on {target}."
EDGE_SELF = "A service cannot depend on itself."
NAME_TAKEN = "A service named {name} already exists."
NOTHING_CHANGED = "Nothing changed: no new revision was saved."


@transaction.atomic
def inventory_store(
    *,
    project: Project,
    inventory: ParsedInventory,
    user: AbstractBaseUser | None = None,
    source_name: str = "",
    note: str = "",
) -> InventoryRevision:
    """Store a parsed inventory as the project's next revision and refresh the cluster diagram."""
    Project.objects.select_for_update().filter(pk=project.pk).get()  # serialises revision numbers
    last = project.inventory_revisions.order_by("-number").values_list("number", flat=True).first() or 0
    revision = InventoryRevision.objects.create(
        project=project, number=last + 1, source_format=inventory.format, source_name=source_name[:255],
        note=note[:300], created_by=user,
    )
    Service.objects.bulk_create([spec_to_row(spec, revision) for spec in inventory.services], batch_size=500)
    ids = {row.name: row for row in Service.objects.filter(revision=revision).only("id", "name")}
    edges = []
    for dep in inventory.dependencies:
        if dep.source not in ids or dep.target not in ids:
            missing = dep.target if dep.target not in ids else dep.source
            raise ApplicationError(f"Service '{dep.source}' depends on unknown service '{missing}'.")
        edges.append(ServiceDependency(revision=revision, source=ids[dep.source], target=ids[dep.target], kind=dep.kind, via=dep.via[:200]))
    ServiceDependency.objects.bulk_create(edges, batch_size=500)
    from sessions_app.diagrams.services import diagram_refresh_from_inventory

    diagram_refresh_from_inventory(revision=revision, user=user)
    return revision


def inventory_import(
    *, project: Project, text: str, fmt: str = "auto", user: AbstractBaseUser | None = None, source_name: str = ""
) -> InventoryRevision:
    """Parse (outside any transaction: a bad file changes nothing) then store."""
    inventory = import_text(text, fmt)
    return inventory_store(project=project, inventory=inventory, user=user, source_name=source_name,
                           note=f"Imported {source_name or inventory.format}")


def _current(project: Project) -> tuple[InventoryRevision, ParsedInventory]:
    revision = project.inventory_revisions.order_by("-number").first()
    if revision is None:
        raise ApplicationError(NO_INVENTORY)
    return revision, revision_to_inventory(revision)


def _validate_name(name: str) -> str:
    from django.core.exceptions import ValidationError

    name = (name or "").strip()
    try:
        SERVICE_NAME(name)
    except ValidationError as exc:
        raise ApplicationError(f"Service name: {exc.messages[0]}", {"field": "name"}) from None
    return name


def service_save(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    name: str,
    original_name: str = "",
    kind: str = "service",
    image: str = "",
    replicas: int = 1,
    healthcheck: bool = False,
    restart: str = "",
    description: str = "",
) -> InventoryRevision:
    """Add a service, or edit one (``original_name``), as a new revision."""
    name = _validate_name(name)
    if kind not in SERVICE_KINDS:
        raise ApplicationError("Choose a known kind of service.", {"field": "kind"})
    if replicas < 0 or replicas > 1000:
        raise ApplicationError("Replicas must be between 0 and 1000.", {"field": "replicas"})
    revision, inv = _current(project) if project.inventory_revisions.exists() else (None, ParsedInventory(format="manual"))
    existing = inv.service(original_name) if original_name else None
    if original_name and existing is None:
        raise ApplicationError(UNKNOWN_SERVICE.format(name=original_name))
    if name != original_name and inv.service(name) is not None:
        raise ApplicationError(NAME_TAKEN.format(name=name), {"field": "name"})
    from teams_app.inventory.types import ServiceSpec

    base = existing or ServiceSpec(name=name)
    updated = replace(base, name=name, kind=kind, image=image.strip(), replicas=replicas, healthcheck=healthcheck,
                      restart=restart.strip(), description=description.strip(), patterns=dict(base.patterns))
    services = [updated if s is existing else s for s in inv.services] if existing else [*inv.services, updated]
    deps = [
        replace(d, source=name if d.source == original_name else d.source, target=name if d.target == original_name else d.target)
        for d in inv.dependencies
    ] if existing else list(inv.dependencies)
    new = ParsedInventory(format="manual", services=services, dependencies=deps)
    _reinfer_patterns_only(new, keep_kinds=True)
    verb = "Edited" if existing else "Added"
    if existing and updated == existing:
        raise ApplicationError(NOTHING_CHANGED)
    return inventory_store(project=project, inventory=new, user=user, note=f"{verb} service {name}")


def service_remove(*, project: Project, user: AbstractBaseUser | None, name: str) -> InventoryRevision:
    _, inv = _current(project)
    if inv.service(name) is None:
        raise ApplicationError(UNKNOWN_SERVICE.format(name=name))
    new = ParsedInventory(
        format="manual",
        services=[s for s in inv.services if s.name != name],
        dependencies=[d for d in inv.dependencies if name not in (d.source, d.target)],
    )
    return inventory_store(project=project, inventory=new, user=user, note=f"Removed service {name}")


def dependency_add(*, project: Project, user: AbstractBaseUser | None, source: str, target: str, kind: str) -> InventoryRevision:
    _, inv = _current(project)
    for name in (source, target):
        if inv.service(name) is None:
            raise ApplicationError(UNKNOWN_SERVICE.format(name=name), {"field": "source" if name == source else "target"})
    if source == target:
        raise ApplicationError(EDGE_SELF, {"field": "target"})
    if kind not in EDGE_KINDS:
        raise ApplicationError("Choose a known kind of dependency.", {"field": "kind"})
    if any(d.source == source and d.target == target for d in inv.dependencies):
        raise ApplicationError(EDGE_EXISTS.format(source=source, target=target), {"field": "target"})
    new = ParsedInventory(format="manual", services=list(inv.services),
                          dependencies=[*inv.dependencies, DependencySpec(source=source, target=target, kind=kind, via="manual")])
    return inventory_store(project=project, inventory=new, user=user, note=f"Added dependency {source} → {target}")


def dependency_remove(*, project: Project, user: AbstractBaseUser | None, source: str, target: str) -> InventoryRevision:
    _, inv = _current(project)
    remaining = [d for d in inv.dependencies if not (d.source == source and d.target == target)]
    if len(remaining) == len(inv.dependencies):
        raise ApplicationError(f"{source} does not depend on {target}.")
    new = ParsedInventory(format="manual", services=list(inv.services), dependencies=remaining)
    return inventory_store(project=project, inventory=new, user=user, note=f"Removed dependency {source} → {target}")


def _reinfer_patterns_only(inv: ParsedInventory, *, keep_kinds: bool) -> None:
    """Hand edits keep the kinds people chose; inference fills patterns and edge kinds."""
    kinds = {s.name: s.kind for s in inv.services}
    edge_kinds = {(d.source, d.target): d.kind for d in inv.dependencies if d.via == "manual"}
    infer(inv)
    if keep_kinds:
        for s in inv.services:
            s.kind = kinds[s.name]
    for d in inv.dependencies:
        if (d.source, d.target) in edge_kinds:
            d.kind = edge_kinds[(d.source, d.target)]
