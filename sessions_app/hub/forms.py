from __future__ import annotations

from django import forms


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Token name", help_text="Who or what will use it, e.g. “Claude Code on Ada's laptop”."
    )
