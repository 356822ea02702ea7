"""Reads of the decision log (§8): the filtered, searchable list, one decision with its history,
links, provenance and approvals, the filter choices, and the data the MADR exporter renders.

Search uses PostgreSQL full-text search (``Decision.search_vector``, kept by a trigger and served by
a GIN index) on PostgreSQL, and ``icontains`` over the same fields on SQLite. The list costs the same
number of queries whatever the page size: everything per row is joined or prefetched.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, F, Func, Max, OuterRef, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404

from sessions_app.decisions import madr
from sessions_app.decisions.models import Decision, DecisionLink, DecisionOption, DecisionProvenance, StatusChange
from sessions_app.models import DesignSession, ValidationPoint, ValidationResponse
from teams_app.models import Project

SEARCH_FIELDS = (
    "title",
    "context",
    "justification",
    "chosen_option",
    "consequences",
    "confirmation",
    "more_information",
)
SEARCH_JSON_FIELDS = ("decision_drivers", "tags")
MAX_SEARCH_WORDS = 8
CHOICES_TTL = 600
# What a list row shows; everything else (the long MADR text) stays in the database.
LIST_FIELDS = ("project", "number", "slug", "title", "status", "status_label", "date", "tags", "session", "session__title")


@dataclass(frozen=True)
class DecisionFilters:
    q: str = ""
    status: str = ""
    tag: str = ""
    session: int | None = None
    specialist: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    timeline: bool = False

    @property
    def active(self) -> bool:
        return bool(
            self.q or self.status or self.tag or self.session or self.specialist or self.date_from or self.date_to
        )


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _search(qs: QuerySet[Decision], q: str) -> tuple[QuerySet[Decision], bool]:
    """Filter by the words of ``q``; returns the queryset and whether it carries a ``rank``."""
    q = " ".join(q.split())[:200]
    if not q:
        return qs, False
    if _is_postgres():
        query = SearchQuery(q, config="english", search_type="websearch")
        return qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query)), True
    words = [w.strip("\"'") for w in q.split()][:MAX_SEARCH_WORDS]
    qs = qs.annotate(**{f"_s_{name}": Cast(name, TextField()) for name in SEARCH_JSON_FIELDS})
    for word in filter(None, words):
        match = Q()
        for name in SEARCH_FIELDS:
            match |= Q(**{f"{name}__icontains": word})
        for name in SEARCH_JSON_FIELDS:
            match |= Q(**{f"_s_{name}__icontains": word})
        qs = qs.filter(match)
    return qs, False


def _tag_filter(tag: str) -> Q:
    if _is_postgres():
        return Q(tags__contains=[tag])
    # SQLite has no JSON containment: match the encoded element, quotes included, in the array text.
    return Q(_tags_text__contains=json.dumps(tag))


def decisions_for_project(*, project: Project, filters: DecisionFilters | None = None) -> QuerySet[Decision]:
    """The project's decisions, filtered and searched, with everything a list row shows."""
    filters = filters or DecisionFilters()
    qs = Decision.objects.filter(project=project)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.tag:
        if not _is_postgres():
            qs = qs.annotate(_tags_text=Cast("tags", TextField()))
        qs = qs.filter(_tag_filter(filters.tag))
    if filters.session:
        qs = qs.filter(session_id=filters.session)
    if filters.specialist:
        qs = qs.filter(
            Exists(DecisionProvenance.objects.filter(decision=OuterRef("pk"), specialist_slug=filters.specialist))
        )
    if filters.date_from:
        qs = qs.filter(date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(date__lte=filters.date_to)
    qs, ranked = _search(qs, filters.q)
    if filters.timeline:
        order = ["-date", "-number"]
    else:
        order = ["-rank", "-number"] if ranked else ["-number"]
    return (
        qs.select_related("session")
        .only(*LIST_FIELDS)
        .prefetch_related(
            Prefetch(
                "provenance",
                queryset=DecisionProvenance.objects.only("decision", "specialist_slug", "author_name"),
                to_attr="provenance_rows",
            ),
            Prefetch(
                "links_in",
                queryset=DecisionLink.objects.filter(kind=DecisionLink.Kind.SUPERSEDES)
                .select_related("from_decision")
                .only("from_decision", "to_decision", "kind", "from_decision__number", "from_decision__title"),
                to_attr="superseded_by",
            ),
        )
        .order_by(*order)
    )


def decision_filter_choices(*, project: Project) -> dict[str, Any]:
    """Tags, sessions and specialists that occur in the project's decisions, for the filter form.

    Computing them reads every decision of the project, so they are cached under a version key
    (how many decisions, the latest ``updated_at``: one index-only query) that any write changes.
    A cold call costs four queries, a warm one a single query."""
    version = Decision.objects.filter(project=project).aggregate(n=Count("pk"), last=Max("updated_at"))
    last = version["last"].isoformat() if version["last"] else "-"
    key = f"decision-choices:{project.pk}:{version['n']}:{last}"
    choices = cache.get(key)
    if choices is None:
        choices = _filter_choices(project)
        cache.set(key, choices, CHOICES_TTL)
    return {**choices, "statuses": Decision.Status.choices}


def _filter_choices(project: Project) -> dict[str, Any]:
    if _is_postgres():
        tags = sorted(
            Decision.objects.filter(project=project)
            .annotate(tag=Func(F("tags"), function="jsonb_array_elements_text"))
            .values_list("tag", flat=True)
            .distinct()
            .order_by()
        )
    else:
        # SQLite's json_each: one query that returns each tag once, instead of every row's list.
        table = Decision._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT t.value FROM {table}, json_each({table}.tags) AS t WHERE {table}.project_id = %s",  # noqa: S608 - table name from the model
                [project.pk],
            )
            tags = sorted(str(row[0]) for row in cursor.fetchall())
    sessions = list(
        DesignSession.objects.filter(Exists(Decision.objects.filter(session=OuterRef("pk"), project=project)))
        .order_by("-created_at")
        .values_list("pk", "title")
    )
    specialists = list(
        DecisionProvenance.objects.filter(decision__project=project)
        .exclude(specialist_slug="")
        .values_list("specialist_slug", "author_name")
        .distinct()
        .order_by("author_name", "specialist_slug")
    )
    unique: dict[str, str] = {}
    for slug, name in specialists:
        unique.setdefault(slug, name)
    return {
        "tags": tags,
        "sessions": sessions,
        "specialists": sorted(unique.items(), key=lambda item: item[1].lower()),
    }


def decision_get(*, project: Project, number: int) -> Decision:
    try:
        return Decision.objects.select_related("project", "prd", "session", "round", "key_question", "created_by").get(
            project=project, number=number
        )
    except Decision.DoesNotExist:
        raise Http404("No such decision.") from None


@dataclass
class Approval:
    point: ValidationPoint
    responses: list[ValidationResponse] = field(default_factory=list)


@dataclass
class DecisionDetail:
    decision: Decision
    options: list[DecisionOption]
    history: list[StatusChange]
    links_out: list[DecisionLink]
    links_in: list[DecisionLink]
    provenance: list[DecisionProvenance]
    approvals: list[Approval]

    @property
    def specialists(self) -> list[str]:
        return sorted({p.author_name for p in self.provenance})

    @property
    def providers(self) -> list[str]:
        return sorted({f"{p.provider}/{p.model}" if p.model else p.provider for p in self.provenance if p.provider})


def decision_detail(*, decision: Decision) -> DecisionDetail:
    """Everything the decision page shows."""
    history = list(
        StatusChange.objects.filter(decision=decision)
        .select_related("actor", "via__point__session")
        .order_by("at", "id")
    )
    points = {c.via.point_id: c.via.point for c in history if c.via_id and c.to_status == Decision.Status.ACCEPTED}
    approvals = [Approval(point=point) for point in points.values()]
    if points:
        by_point = {a.point.pk: a for a in approvals}
        for response in (
            ValidationResponse.objects.filter(point_id__in=points, verdict=ValidationResponse.Verdict.APPROVE)
            .select_related("user")
            .order_by("created_at", "id")
        ):
            by_point[response.point_id].responses.append(response)
    return DecisionDetail(
        decision=decision,
        options=list(decision.options.order_by("order")),
        history=history,
        links_out=list(decision.links_out.select_related("to_decision").order_by("kind", "to_decision__number")),
        links_in=list(decision.links_in.select_related("from_decision").order_by("kind", "from_decision__number")),
        provenance=list(
            decision.provenance.select_related("contribution__round", "contribution__session").order_by(
                "author_name", "id"
            )
        ),
        approvals=approvals,
    )


def decision_status_history(*, decision: Decision) -> QuerySet[StatusChange]:
    return StatusChange.objects.filter(decision=decision).select_related("actor", "via").order_by("at", "id")


def decisions_numbers(*, project: Project) -> dict[int, int]:
    """Number → primary key of the project's decisions (the importer resolves links with it)."""
    return dict(Decision.objects.filter(project=project).values_list("number", "pk"))


def _export_row(decision: Decision) -> madr.ExportDecision:
    return madr.ExportDecision(
        number=decision.number,
        slug=decision.slug,
        title=decision.title,
        status=decision.status,
        date=decision.date,
        decision_makers=list(decision.decision_makers),
        consulted=list(decision.consulted),
        informed=list(decision.informed),
        tags=list(decision.tags),
        prd_reference=decision.prd_reference,
        context=decision.context,
        decision_drivers=list(decision.decision_drivers),
        options=[
            madr.OptionData(
                title=o.title, description=o.description, good=list(o.good), neutral=list(o.neutral), bad=list(o.bad)
            )
            for o in decision.options.all()
        ],
        chosen_option=decision.chosen_option,
        justification=decision.justification,
        consequences=decision.consequences,
        confirmation=decision.confirmation,
        more_information=decision.more_information,
        links=[
            madr.ExportLink(kind=link.kind, target_number=link.to_decision.number) for link in decision.links_out.all()
        ],
        status_label=decision.status_label,
        superseded_by=[link.from_decision.number for link in getattr(decision, "superseders", [])],
        external_id=decision.external_id,
    )


def decisions_for_export(*, project: Project, numbers: list[int] | None = None) -> list[madr.ExportDecision]:
    qs = Decision.objects.filter(project=project)
    if numbers is not None:
        qs = qs.filter(number__in=numbers)
    qs = qs.prefetch_related(
        Prefetch("options", queryset=DecisionOption.objects.order_by("order")),
        Prefetch(
            "links_out",
            queryset=DecisionLink.objects.select_related("to_decision").only(
                "from_decision_id", "kind", "to_decision__number"
            ),
        ),
        Prefetch(
            "links_in",
            queryset=DecisionLink.objects.filter(kind=DecisionLink.Kind.SUPERSEDES)
            .select_related("from_decision")
            .only("to_decision_id", "kind", "from_decision__number"),
            to_attr="superseders",
        ),
    ).order_by("number")
    return [_export_row(d) for d in qs]
