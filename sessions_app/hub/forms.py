from __future__ import annotations

from django import forms


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Token name", help_text="Who or what will use it, e.g. “Claude Code on Ada's laptop”."
    )


class PlanningImportForm(forms.Form):
    path = forms.CharField(
        max_length=1000, label="Task Master project folder",
        help_text="A folder on the machine running Maestro that holds .taskmaster/docs/ (and .taskmaster/tasks/tasks.json).",
    )
