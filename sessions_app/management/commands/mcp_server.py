"""Serve the orchestrator hub's MCP tools over stdio, bound to one project (for a client's .mcp.json).

stdout carries the protocol; everything else goes to stderr. Without a broker (the embedded
profile with no REDIS_URL, i.e. Celery's ``memory://``), the specialists run in this process.

When a task comes without a PRD, the PRDs of Task Master AI's planning files in the working folder
(``.taskmaster/docs/``, see ``sessions_app.hub.planning``) are imported and offered first;
``--planning-dir`` names another folder.
"""

from __future__ import annotations

import logging
import os
import sys

import anyio
from django.core.management.base import BaseCommand, CommandError

from teams_app.models import Project

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the hub's MCP tools (orchestrator.*, *_assist) over stdio for one project."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug every tool call works in")
        parser.add_argument("--planning-dir", default=None,
                            help="Folder with Task Master planning files (.taskmaster/); default: the working folder")

    def handle(self, *args, project: str, planning_dir: str | None = None, **options):
        from config.celery import run_here_without_broker
        from sessions_app.hub.mcp_server import build_server

        if not Project.objects.filter(slug=project).exists():
            raise CommandError(f"No project with slug {project!r}.")
        if run_here_without_broker():
            print("mcp_server: no broker configured (REDIS_URL unset); specialists run in this process.", file=sys.stderr)
        server = build_server(project_slug=project, planning_dir=planning_dir or os.getcwd())
        anyio.run(server.run_stdio_async)
