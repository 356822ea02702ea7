"""Import a cluster inventory file as the project's next revision (SPEC §5)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.models import DiagramVersion
from teams_app.errors import ApplicationError
from teams_app.inventory.importers import FORMATS
from teams_app.inventory.services import inventory_import
from teams_app.inventory.store import revision_to_inventory
from teams_app.inventory.types import SERVICE_KINDS, ParsedInventory
from teams_app.models import InventoryRevision, Project


def read_inventory_file(path: Path, limit: int) -> str:
    """The file's text, or a CommandError a person can act on. Reads at most ``limit`` + 1 bytes."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise CommandError(f"{path} is too large ({size} bytes; the limit is {limit} bytes).")
        with path.open("rb") as handle:
            # stat() says nothing about pipes and /proc files: cap the read itself too.
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(raw) > limit:
        raise CommandError(f"{path} is too large (more than {limit} bytes).")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text.") from None


def inventory_as_json(revision: InventoryRevision, inventory: ParsedInventory) -> dict[str, Any]:
    """The documented --json shape; sorted so the output is stable across runs."""
    return {
        "revision": revision.number,
        "services": [
            {"name": s.name, "kind": s.kind, "patterns": s.patterns}
            for s in sorted(inventory.services, key=lambda s: s.name)
        ],
        "dependencies": [
            {"from": d.source, "to": d.target, "kind": d.kind}
            for d in sorted(inventory.dependencies, key=lambda d: (d.source, d.target))
        ],
    }


class Command(BaseCommand):
    help = "Import docker-compose, Kubernetes manifests or a Backstage catalog as a new inventory revision."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("file", help="Path of the inventory file")
        parser.add_argument("--format", default="auto", choices=list(FORMATS), help="Default: detect from the content")
        parser.add_argument("--json", action="store_true", help="Print the stored revision as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        path = Path(options["file"])
        text = read_inventory_file(path, settings.INVENTORY_MAX_BYTES)
        try:
            revision = inventory_import(project=project, text=text, fmt=options["format"], source_name=path.name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        # Read back what was stored (secrets masked, as every other reader sees it).
        inventory = revision_to_inventory(revision)
        if options["json"]:
            self.stdout.write(json.dumps(inventory_as_json(revision, inventory), ensure_ascii=False))
            return
        self._summary(project, revision, inventory)

    def _summary(self, project: Project, revision: InventoryRevision, inventory: ParsedInventory) -> None:
        kinds = Counter(s.kind for s in inventory.services)
        by_kind = ", ".join(f"{kinds[k]} {k}" for k in SERVICE_KINDS if kinds[k])
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {revision.source_name} ({revision.source_format}) into {project.slug} as revision "
                f"{revision.number}: {len(inventory.services)} services, {len(inventory.dependencies)} dependencies."
            )
        )
        if by_kind:
            self.stdout.write(f"  kinds: {by_kind}")
        version = DiagramVersion.objects.filter(inventory_revision=revision).order_by("-number").first()
        if version is not None:
            self.stdout.write(f"  cluster diagram: new version v{version.number}")
        else:
            self.stdout.write("  cluster diagram: unchanged")
