"""Print a version of a project's cluster diagram, as Mermaid source or ASCII (SPEC §9)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.diagrams.services import diagram_current_version
from sessions_app.models import Diagram, DiagramVersion
from teams_app.models import Project


class Command(BaseCommand):
    help = "Print the project's cluster diagram (latest version unless --version is given)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Django reserves --version for its own version; this command's --version is the diagram's.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--format", default="mermaid", choices=["mermaid", "ascii"])
        parser.add_argument(
            "--version", type=int, default=None, dest="number", metavar="N", help="Version number (default: the latest)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        number = options["number"]
        if number is None:
            version = diagram_current_version(project=project)
            if version is None:
                raise CommandError(f"Project {project.slug} has no cluster diagram yet: import an inventory first.")
        else:
            versions = DiagramVersion.objects.filter(diagram__project=project, diagram__kind=Diagram.Kind.CLUSTER)
            version = versions.filter(number=number).first()
            if version is None:
                known = sorted(versions.values_list("number", flat=True))
                if not known:
                    raise CommandError(f"Project {project.slug} has no cluster diagram yet: import an inventory first.")
                which = (
                    f"versions are {known[0]} to {known[-1]}" if len(known) > 1 else f"its only version is {known[0]}"
                )
                raise CommandError(f"The cluster diagram of {project.slug} has no version {number}; {which}.")
        text = version.mermaid if options["format"] == "mermaid" else version.ascii
        # write() adds the newline only when the stored text lacks one, so output == stored text.
        self.stdout.write(text)
