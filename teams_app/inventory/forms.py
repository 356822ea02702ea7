from __future__ import annotations

from django import forms
from django.conf import settings

from teams_app.inventory.importers import FORMATS
from teams_app.inventory.types import EDGE_KINDS, SERVICE_KINDS


def size_limit_text(limit: int) -> str:
    """``limit`` bytes for a person: "1 MB", "500 KB", "200 bytes" (never "0 KB")."""
    for unit, size in (("MB", 1_000_000), ("KB", 1_000)):
        if limit >= size:
            return f"{limit / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{limit} bytes"


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=list(FORMATS.items()), initial="auto")
    file = forms.FileField(required=False, help_text="docker-compose.yml, Kubernetes manifests or catalog-info.yaml")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), required=False, label="Or paste it")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        limit = settings.INVENTORY_MAX_BYTES
        if upload:
            if upload.size > limit:
                raise forms.ValidationError(f"The file is larger than {size_limit_text(limit)}.")
            raw = upload.read(limit + 1)
            try:
                data["text"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
            data["source_name"] = upload.name[:255]
        else:
            data["source_name"] = "pasted text"
        if not (data.get("text") or "").strip():
            raise forms.ValidationError("Choose a file or paste its content.")
        if len(data["text"].encode("utf-8")) > limit:
            raise forms.ValidationError(f"The inventory is larger than {size_limit_text(limit)}.")
        return data


class ServiceForm(forms.Form):
    original_name = forms.ChoiceField(required=False, label="Edit existing", choices=[("", "(new service)")])
    name = forms.CharField(max_length=63)
    kind = forms.ChoiceField(choices=[(k, k) for k in SERVICE_KINDS])
    image = forms.CharField(max_length=300, required=False)
    replicas = forms.IntegerField(min_value=0, max_value=1000, initial=1)
    healthcheck = forms.BooleanField(required=False)
    restart = forms.CharField(max_length=40, required=False, help_text="e.g. unless-stopped")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, names: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["original_name"].choices = [("", "(new service)")] + [(n, n) for n in sorted(names)]


class DependencyForm(forms.Form):
    source = forms.CharField(max_length=63)
    target = forms.CharField(max_length=63)
    kind = forms.ChoiceField(choices=[(k, k) for k in EDGE_KINDS])

    def __init__(self, *args, **kwargs):
        # Shown on the same page as ServiceForm, which also has a "kind": distinct element ids,
        # so each <label for=…> names its own field.
        kwargs.setdefault("auto_id", "id_dependency_%s")
        super().__init__(*args, **kwargs)
