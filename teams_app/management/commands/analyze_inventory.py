"""Print the rules analyst's findings for a project's latest inventory revision (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from teams_app.inventory.rules import summarize
from teams_app.inventory.selectors import findings_for_project, inventory_current
from teams_app.inventory.types import ROLE_LABELS, ROLES, Finding
from teams_app.models import Project


class Command(BaseCommand):
    help = "Analyse the latest inventory revision with the built-in rules; print findings by role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--json", action="store_true", help='Print {"findings": [...]} as JSON')

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        revision, _ = inventory_current(project=project)
        if revision is None:
            raise CommandError(f"Project {project.slug} has no inventory yet: run import_inventory first.")
        findings = findings_for_project(project=project)
        if options["json"]:
            self.stdout.write(json.dumps({"findings": [f.as_dict() for f in findings]}, ensure_ascii=False))
            return
        self._table(project, revision.number, findings)

    def _table(self, project: Project, number: int, findings: list[Finding]) -> None:
        summary = summarize(findings)
        counts = summary["by_severity"]
        self.stdout.write(
            f"{project.slug} · inventory revision {number} · {summary['total']} findings "
            f"({counts['critical']} critical, {counts['warning']} warning, {counts['info']} info)"
        )
        rule_width = max((len(f.rule) for f in findings), default=6)
        for role in ROLES:
            mine = [f for f in findings if f.role == role]  # already sorted by severity, then rule
            role_counts = summary["by_role"][role]
            self.stdout.write("")
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    f"{ROLE_LABELS[role]} ({role}): {role_counts['total']} "
                    f"[{role_counts['critical']} critical, {role_counts['warning']} warning, {role_counts['info']} info]"
                )
            )
            if not mine:
                self.stdout.write("  no findings")
            for f in mine:
                self.stdout.write(f"  {f.severity:<8}  {f.rule:<{rule_width}}  {', '.join(f.services)}: {f.why}")
