"""Print a design session as one JSON document: brief, rounds, proposal, plan, questions, decisions."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from sessions_app import selectors
from sessions_app.models import DesignSession


class Command(BaseCommand):
    help = "Print a session as JSON (the same document as GET /sessions/<id>/export.json)."

    def add_arguments(self, parser):
        parser.add_argument("--session", type=int, required=True, help="Session id")
        parser.add_argument("--json", action="store_true", help="Print JSON (the only format; accepted for scripts)")
        parser.add_argument("--indent", type=int, default=None, help="Indent the JSON by this many spaces")

    def handle(self, *args, **o):
        session = DesignSession.objects.filter(pk=o["session"]).first()
        if session is None:
            raise CommandError(f"There is no session {o['session']}.")
        self.stdout.write(json.dumps(selectors.session_export(session), ensure_ascii=False, indent=o["indent"]))
