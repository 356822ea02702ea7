"""Forms of the decision pages. They parse input only; the services validate and write."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils.text import slugify

from sessions_app.decisions.models import Decision, DecisionLink
from sessions_app.decisions.selectors import DecisionFilters
from sessions_app.decisions.services.writes import TRANSITIONS
from sessions_app.models import DesignSession
from teams_app.models import PRD, Project

D = Decision.Status
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
CHOSEN_NOT_AN_OPTION = "The chosen option must be one of the considered options."


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _commas(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class DecisionFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *D.choices])
    tag = forms.CharField(required=False, max_length=60)
    session = forms.IntegerField(required=False, min_value=1)
    specialist = forms.CharField(required=False, max_length=80)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    per_page = forms.IntegerField(required=False, min_value=1, label="Per page")
    view = forms.ChoiceField(required=False, choices=[("", "List"), ("timeline", "Timeline")])

    def filters(self) -> DecisionFilters:
        """The valid part of the query string; an invalid filter is ignored rather than refused."""
        self.is_valid()
        data = self.cleaned_data  # holds the valid fields only
        return DecisionFilters(
            q=data.get("q") or "",
            status=data.get("status") or "",
            tag=slugify(data.get("tag") or ""),
            session=data.get("session"),
            specialist=(data.get("specialist") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            timeline=data.get("view") == "timeline",
        )

    def page_size(self) -> int:
        self.is_valid()
        size = self.cleaned_data.get("per_page")
        return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class DecisionForm(forms.Form):
    title = forms.CharField(max_length=300)
    status = forms.ChoiceField(choices=[(D.DRAFT, D.DRAFT.label), (D.PROPOSED, D.PROPOSED.label)], initial=D.PROPOSED)
    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Defaults to today."
    )
    context = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Context and problem statement",
        help_text="Markdown.",
    )
    decision_drivers = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One per line."
    )
    chosen_option = forms.CharField(required=False, max_length=300, help_text="The title of one of the options below.")
    justification = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Why this option."
    )
    consequences = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text='Markdown, e.g. "* Good, because …".'
    )
    confirmation = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="How compliance is confirmed."
    )
    more_information = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(required=False, max_length=500, help_text="Comma separated.")
    decision_makers = forms.CharField(required=False, max_length=1000, help_text="Comma separated names.")
    consulted = forms.CharField(required=False, max_length=1000, help_text="Comma separated names.")
    informed = forms.CharField(required=False, max_length=1000, help_text="Comma separated names.")
    prd = forms.ModelChoiceField(queryset=PRD.objects.none(), required=False, label="PRD")
    prd_reference = forms.CharField(
        required=False, max_length=512, label="Or a PRD id or link", help_text="When the PRD is not in this project."
    )
    session = forms.ModelChoiceField(queryset=DesignSession.objects.none(), required=False)

    def __init__(
        self, *args: Any, project: Project, statuses: tuple[str, ...] | None = (D.DRAFT, D.PROPOSED), **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.fields["prd"].queryset = project.prds.order_by("-created_at")
        self.fields["session"].queryset = project.design_sessions.order_by("-created_at")
        if statuses is None:
            del self.fields["status"]
        else:
            self.fields["status"].choices = [(s, D(s).label) for s in statuses]

    @classmethod
    def initial_for(cls, decision: Decision) -> dict[str, Any]:
        return {
            "title": decision.title,
            "status": D.PROPOSED,
            "date": decision.date,
            "context": decision.context,
            "decision_drivers": "\n".join(decision.decision_drivers),
            "chosen_option": decision.chosen_option,
            "justification": decision.justification,
            "consequences": decision.consequences,
            "confirmation": decision.confirmation,
            "more_information": decision.more_information,
            "tags": ", ".join(decision.tags),
            "decision_makers": ", ".join(decision.decision_makers),
            "consulted": ", ".join(decision.consulted),
            "informed": ", ".join(decision.informed),
            "prd": decision.prd_id,
            "prd_reference": "" if decision.prd_id else decision.prd_reference,
            "session": decision.session_id,
        }

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        fields: dict[str, Any] = {
            name: data[name]
            for name in (
                "title",
                "context",
                "chosen_option",
                "justification",
                "consequences",
                "confirmation",
                "more_information",
            )
        }
        fields.update(
            decision_drivers=_lines(data["decision_drivers"]),
            tags=_commas(data["tags"]),
            decision_makers=_commas(data["decision_makers"]),
            consulted=_commas(data["consulted"]),
            informed=_commas(data["informed"]),
            prd=data["prd"],
            prd_reference=data["prd"].reference if data["prd"] else data["prd_reference"].strip(),
            session=data["session"],
        )
        if data.get("date"):
            fields["date"] = data["date"]
        return fields


class OptionForm(forms.Form):
    title = forms.CharField(required=False, max_length=300)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    good = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Good, because … (one per line)"
    )
    neutral = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}), help_text="Neutral, because …")
    bad = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Bad, because …")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("title") and any(data.get(k) for k in ("description", "good", "neutral", "bad")):
            self.add_error("title", "Give this option a title.")
        return data


OptionFormSet = formset_factory(OptionForm, extra=2, max_num=20, validate_max=True)


def options_initial(decision: Decision) -> list[dict[str, str]]:
    return [
        {
            "title": o.title,
            "description": o.description,
            "good": "\n".join(o.good),
            "neutral": "\n".join(o.neutral),
            "bad": "\n".join(o.bad),
        }
        for o in decision.options.order_by("order")
    ]


def options_from_formset(formset: Any) -> list[dict[str, Any]]:
    options = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if not data.get("title"):
            continue
        options.append(
            {
                "title": data["title"],
                "description": data.get("description", ""),
                "good": _lines(data.get("good", "")),
                "neutral": _lines(data.get("neutral", "")),
                "bad": _lines(data.get("bad", "")),
            }
        )
    return options


def chosen_is_an_option(form: DecisionForm, options: list[dict[str, Any]]) -> bool:
    chosen = " ".join((form.cleaned_data.get("chosen_option") or "").split())
    if chosen and options and chosen not in {" ".join(o["title"].split()) for o in options}:
        form.add_error("chosen_option", CHOSEN_NOT_AN_OPTION)
        return False
    return True


class StatusForm(forms.Form):
    to_status = forms.ChoiceField(label="New status")
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, decision: Decision, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Superseding creates a successor: that is the supersede form, not a bare status.
        allowed = [s for s in D.values if s in TRANSITIONS[decision.status] and s != D.SUPERSEDED]
        self.fields["to_status"].choices = [(s, D(s).label) for s in allowed]


class LinkForm(forms.Form):
    kind = forms.ChoiceField(choices=[(DecisionLink.Kind.AMENDS, "Amends"), (DecisionLink.Kind.RELATES, "Relates to")])
    target = forms.IntegerField(min_value=1, label="ADR number", help_text="E.g. 3 for ADR-0003.")
