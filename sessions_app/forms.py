from __future__ import annotations

from django import forms
from django.template.defaultfilters import pluralize

from sessions_app.models import DesignSession
from sessions_app.providers import PROVIDERS
from sessions_app.selectors import providers_unavailable
from teams_app.models import PRD, PRD_REFERENCE, Membership, TeamTemplate

DEFAULT_TEAM = "new-service-integration"  # the team the README's path starts with


class _SelectWithDisabled(forms.Select):
    """A select whose unavailable options are shown, greyed out, with their reason."""

    def __init__(self, *args, disabled: set[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled = disabled or set()

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in self.disabled:
            option["attrs"]["disabled"] = True
        return option


class SessionStartForm(forms.Form):
    template = forms.ModelChoiceField(queryset=TeamTemplate.objects.order_by("name"), label="Team", empty_label=None)
    requirement = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000,
                                  help_text="What should the team design? E.g. 'Add a loyalty points service to checkout'.")
    title = forms.CharField(max_length=200, required=False, help_text="Defaults to the requirement's first line.")
    prd = forms.ModelChoiceField(queryset=PRD.objects.none(), required=False, label="PRD",
                                 help_text="Without a PRD the session waits and asks for one.")
    provider = forms.ChoiceField(choices=[("", "Project default")] + [(p, p) for p in PROVIDERS], required=False)
    budget_tokens = forms.IntegerField(min_value=1, required=False, label="Token budget",
                                       help_text="Optional. The session pauses at a human gate when it is spent.")
    approval_quorum = forms.IntegerField(min_value=1, max_value=50, initial=1, label="Approvals needed",
                                         help_text="How many of the project's product owners must approve each gate.")
    approvers = forms.ModelMultipleChoiceField(queryset=None, required=False, label="Named approvers",
                                               help_text="Optional. When chosen, only they answer and all must approve.")
    validation_deadline_hours = forms.IntegerField(min_value=1, max_value=24 * 60, required=False,
                                                   label="Answer within (hours)")
    expiry_action = forms.ChoiceField(choices=DesignSession.ExpiryAction.choices, initial="keep_open",
                                      label="When a deadline passes")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["prd"].queryset = project.prds.exclude(status=PRD.Status.SUPERSEDED)
        from django.contrib.auth import get_user_model

        self.fields["approvers"].queryset = get_user_model().objects.filter(memberships__project=project).order_by("username")
        latest = project.prds.filter(status=PRD.Status.ACTIVE).order_by("-created_at").first()
        if latest and not self.is_bound:
            self.initial["prd"] = latest.pk
        default_team = TeamTemplate.objects.filter(slug=DEFAULT_TEAM).first()
        if default_team and not self.is_bound:
            self.initial["template"] = default_team.pk
        self.unavailable = providers_unavailable()
        field = self.fields["provider"]
        field.choices = [("", "Project default")] + [
            (p, f"{p} (unavailable: {self.unavailable[p]})" if p in self.unavailable else p) for p in PROVIDERS
        ]
        field.widget = _SelectWithDisabled(choices=field.choices, disabled=set(self.unavailable))
        if self.unavailable:
            field.help_text = "Unavailable providers need their settings first (see the README's configuration)."

    def clean_provider(self):
        provider = self.cleaned_data.get("provider") or ""
        if provider in self.unavailable:
            raise forms.ValidationError(f"{provider} is unavailable: {self.unavailable[provider]}.")
        return provider

    def clean(self):
        data = super().clean()
        quorum = data.get("approval_quorum")
        if quorum and not data.get("approvers"):
            owners = self.project.memberships.filter(role=Membership.Role.PRODUCT_OWNER).count()
            if 0 < owners < quorum:
                self.add_error("approval_quorum", (
                    f"The project has {owners} product owner{pluralize(owners)}, so at most {owners} can approve. "
                    "Ask for fewer approvals, name the approvers, or add product owners on the Members tab first."
                ))
        return data


class AttachPRDForm(forms.Form):
    prd = forms.ModelChoiceField(queryset=PRD.objects.none(), required=False, label="Existing PRD")
    reference = forms.CharField(max_length=512, required=False, validators=[PRD_REFERENCE], label="Or a PRD id/link")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prd"].queryset = project.prds.exclude(status=PRD.Status.SUPERSEDED)

    def clean(self):
        data = super().clean()
        if not data.get("prd") and not data.get("reference"):
            raise forms.ValidationError("Choose a PRD or give its id/link.")
        return data


class MessageForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, label="Message to the team")


class DecideForm(forms.Form):
    option = forms.CharField(max_length=200)


class ValidationResponseForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=[("approve", "Approve"), ("request_changes", "Request changes"), ("reject", "Reject")], required=False
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False)
    # The proposal version the card showed when the person answered.
    proposal_seen = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, point, **kwargs):
        super().__init__(*args, **kwargs)
        self.point = point
        for index, question in enumerate(point.questions):
            self.fields[f"answer_{index}"] = forms.CharField(label=question, required=False, max_length=5000,
                                                             widget=forms.Textarea(attrs={"rows": 2}))

    def answers(self) -> dict:
        return {q: self.cleaned_data.get(f"answer_{i}", "") for i, q in enumerate(self.point.questions)}


class BudgetForm(forms.Form):
    budget_tokens = forms.IntegerField(min_value=1, required=False)


class MermaidEditForm(forms.Form):
    mermaid = forms.CharField(widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}), max_length=100_000)
    note = forms.CharField(max_length=300, required=False)
