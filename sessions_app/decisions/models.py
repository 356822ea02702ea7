"""Models of the decision log (§8). Imported by ``sessions_app.models``.

A decision follows MADR 4. Its history is append-only: every status change is a
:class:`StatusChange` row, and an accepted decision is superseded or deprecated, never rewritten
(the services enforce it; see ``sessions_app.decisions.services``).

Full-text search on PostgreSQL reads ``Decision.search_vector``. A trigger created by this app's
migration keeps it current on every INSERT and UPDATE (services, ``bulk_create``, the admin alike)
and a GIN index serves it; both exist only on PostgreSQL. On SQLite the column stays empty and the
selectors fall back to ``icontains``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse
from django.utils import timezone

from teams_app.models import PRD, Project

__all__ = ["Decision", "DecisionLink", "DecisionOption", "DecisionProvenance", "StatusChange"]


def adr_id(number: int) -> str:
    return f"ADR-{number:04d}"


class DecisionManager(models.Manager):
    # The tsvector is maintained and read by the database only; never load it or write it back.
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().defer("search_vector")


class Decision(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROPOSED = "proposed", "Proposed"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        DEPRECATED = "deprecated", "Deprecated"
        SUPERSEDED = "superseded", "Superseded"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="decisions")
    number = models.PositiveIntegerField(help_text="Per project; shown as ADR-0001.")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # MADR allows any status text ("on hold", "Approved"); an imported file's own words are kept
    # here while ``status`` holds the category that filters and transitions use.
    status_label = models.CharField(max_length=100, blank=True, help_text="The status as an imported file wrote it.")
    # Empty for an imported file that gives no date: a date is never invented.
    date = models.DateField(
        default=timezone.localdate, null=True, blank=True, help_text="When the decision was last updated (MADR)."
    )
    external_id = models.CharField(
        max_length=200, blank=True, help_text="Its id in the collection it was imported from (a Log4brains slug)."
    )
    decision_makers = models.JSONField(default=list, blank=True)
    consulted = models.JSONField(default=list, blank=True)
    informed = models.JSONField(default=list, blank=True)
    context = models.TextField(blank=True, help_text="Context and problem statement (markdown).")
    decision_drivers = models.JSONField(default=list, blank=True)
    chosen_option = models.CharField(max_length=300, blank=True)
    justification = models.TextField(blank=True)
    consequences = models.TextField(blank=True)
    confirmation = models.TextField(blank=True)
    more_information = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    prd_reference = models.CharField(max_length=512, blank=True)
    prd = models.ForeignKey(PRD, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    session = models.ForeignKey(
        "sessions_app.DesignSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    round = models.ForeignKey(
        "sessions_app.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    key_question = models.OneToOneField(
        "sessions_app.KeyQuestion", null=True, blank=True, on_delete=models.SET_NULL, related_name="decision"
    )
    contributions = models.ManyToManyField(
        "sessions_app.Contribution", through="DecisionProvenance", related_name="decisions", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_vector = SearchVectorField(null=True, blank=True, editable=False)

    objects = DecisionManager()

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="unique_decision_number"),
            # MADR numbers its first record 0000.
            models.CheckConstraint(condition=models.Q(number__gte=0), name="decision_number_not_negative"),
        ]
        indexes = [
            models.Index(fields=["project", "status"], name="decision_project_status"),
            models.Index(fields=["project", "date"], name="decision_project_date"),
            models.Index(fields=["project", "updated_at"], name="decision_project_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.adr_id} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("decision_detail", kwargs={"slug": self.project.slug, "number": self.number})

    @property
    def adr_id(self) -> str:
        return adr_id(self.number)

    @property
    def file_name(self) -> str:
        return f"{self.number:04d}-{self.slug}.md"

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.PROPOSED)

    @property
    def specialist_names(self) -> list[str]:
        """Who contributed: from ``provenance_rows`` when the list selector prefetched them."""
        rows = getattr(self, "provenance_rows", None)
        return sorted({p.author_name for p in (rows if rows is not None else self.provenance.all())})


class DecisionOption(models.Model):
    """One considered option with its MADR pros and cons."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="options")
    order = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    good = models.JSONField(default=list, blank=True)
    neutral = models.JSONField(default=list, blank=True)
    bad = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["decision", "order"]
        constraints = [models.UniqueConstraint(fields=["decision", "order"], name="unique_decision_option_order")]

    def __str__(self) -> str:
        return self.title


class DecisionLink(models.Model):
    """``from_decision`` supersedes / amends / relates to ``to_decision``. A decision may have
    several successors (several links of kind ``supersedes`` pointing to it)."""

    class Kind(models.TextChoices):
        SUPERSEDES = "supersedes", "Supersedes"
        AMENDS = "amends", "Amends"
        RELATES = "relates", "Relates to"

    REVERSE_LABELS = {"supersedes": "Superseded by", "amends": "Amended by", "relates": "Related to"}

    from_decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="links_out")
    to_decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["from_decision", "kind", "to_decision"]
        constraints = [
            models.UniqueConstraint(fields=["from_decision", "to_decision", "kind"], name="unique_decision_link"),
            models.CheckConstraint(
                condition=~models.Q(from_decision=models.F("to_decision")), name="decision_link_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_decision_id} {self.kind} {self.to_decision_id}"

    @property
    def reverse_label(self) -> str:
        return self.REVERSE_LABELS[self.kind]


class StatusChange(models.Model):
    """Append-only status history. ``from_status`` is empty for the row written at creation."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="status_changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Who, as shown: a user's name, Maestro or an import.")
    from_status = models.CharField(max_length=20, choices=Decision.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Decision.Status.choices)
    at = models.DateTimeField(default=timezone.now)
    via = models.ForeignKey(
        "sessions_app.ValidationResponse",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decision_changes",
    )
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["decision", "at", "id"]
        indexes = [models.Index(fields=["decision", "at"], name="status_change_decision_at")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class DecisionProvenance(models.Model):
    """A contribution a decision cites, with who made it kept on the row so the provenance
    survives even if the session (and its contributions) are deleted."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="provenance")
    contribution = models.ForeignKey(
        "sessions_app.Contribution", null=True, blank=True, on_delete=models.SET_NULL, related_name="decision_citations"
    )
    specialist_slug = models.CharField(max_length=80, blank=True)
    author_name = models.CharField(max_length=150)
    provider = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    option = models.CharField(max_length=300, blank=True, help_text="The position this contribution took.")

    class Meta:
        verbose_name_plural = "decision provenance"
        ordering = ["decision", "author_name", "id"]
        constraints = [models.UniqueConstraint(fields=["decision", "contribution"], name="unique_decision_citation")]
        indexes = [models.Index(fields=["specialist_slug"], name="decision_prov_specialist")]

    def __str__(self) -> str:
        return f"{self.author_name} ({self.provider or 'unknown'}/{self.model or '-'})"
