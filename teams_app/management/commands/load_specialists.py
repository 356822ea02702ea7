from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from teams_app.specialists.loader import load_specialists


class Command(BaseCommand):
    help = (
        "Load specialists from Claude Code agent files (*.md with YAML front matter). "
        "Without paths, loads the built-in specialists. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="Agent files or folders such as .claude/agents")

    def handle(self, *args, paths, **options):
        report = load_specialists([Path(p) for p in paths] if paths else None)
        for slug in report.created:
            self.stdout.write(f"created  {slug}")
        for slug in report.updated:
            self.stdout.write(f"updated  {slug}")
        total = len(report.created) + len(report.updated) + len(report.unchanged)
        self.stdout.write(
            self.style.SUCCESS(
                f"{total} specialists loaded ({len(report.created)} new, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged)"
            )
        )
        for path, reason in report.errors:
            self.stderr.write(self.style.ERROR(f"skipped  {path}: {reason}"))
        if report.errors and total == 0:
            raise CommandError("No specialist could be loaded.")
