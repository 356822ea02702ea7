"""Import of ADR collections (MADR 4, MADR 2/3 / Log4brains, adr-tools, free-form) into a
project's decision log, for the import page and the ``import_decisions`` command. Parsing is
:mod:`sessions_app.decisions.madr`; this module turns parsed files into rows and links.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from sessions_app.decisions import madr
from sessions_app.decisions.models import Decision, DecisionLink
from sessions_app.decisions.services.records import default_slug, lock_project, new_decision
from teams_app.errors import ApplicationError
from teams_app.models import Project
from teams_app.selectors import prd_by_reference

IMPORT_FAILED = "Nothing was imported: {count} file(s) have problems."
NOTHING_TO_IMPORT = "No ADR markdown files (NNNN-title.md) were found."


@dataclass
class ImportReport:
    """What an import did, by file name: imported decisions (with notes on what was read loosely
    or left out), problems (files not imported) and skipped files (templates, indexes, READMEs)."""

    decisions: list[Decision] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


def _resolve_link(
    target: str, *, by_file: dict[str, madr.ParsedADR], numbers: dict[int, madr.ParsedADR], existing: dict[int, int]
) -> int | None:
    """The number a link points to (in the import or already in the project), or None."""
    how, key = madr.link_target_key(target)
    if how == "file":
        adr = by_file.get(str(key).lower())
        if adr is not None:
            return adr.number
        number, _ = madr.number_and_slug(str(key))
        key = number
    if isinstance(key, int) and (key in numbers or key in existing):
        return key
    return None


def _import_fields(project: Project, adr: madr.ParsedADR, unresolved: list[str]) -> dict[str, Any]:
    more = adr.more_information
    if unresolved:
        # Links to ADRs that are not here stay readable as text rather than disappear.
        listing = "\n".join(f"* {kind} {target}" for kind, target in unresolved)
        more = f"{more}\n\n{listing}".strip()
    return {
        "title": adr.title,
        "date": adr.date,
        "decision_makers": adr.decision_makers,
        "consulted": adr.consulted,
        "informed": adr.informed,
        "tags": adr.tags,
        "prd_reference": adr.prd_reference,
        "prd": prd_by_reference(project=project, reference=adr.prd_reference),
        "context": adr.context,
        "decision_drivers": adr.decision_drivers,
        "chosen_option": adr.chosen_option,
        "justification": adr.justification,
        "consequences": adr.consequences,
        "confirmation": adr.confirmation,
        "more_information": more,
    }


@transaction.atomic
def decisions_import(
    *,
    project: Project,
    files: Sequence[tuple[str, str | bytes]],
    user: AbstractBaseUser | None = None,
    strict: bool = False,
) -> ImportReport:
    """Import ADR files: MADR 4, MADR 2/3 (Log4brains), adr-tools (Nygard) and free-form records.

    Every file that is an ADR is imported, each whole or not at all; the others are reported by
    name with a reason (``problems``: no title, invalid front matter, a number used twice or
    already in the project ...), and templates, indexes and READMEs are ``skipped``. A link to an
    ADR that is neither imported nor in the project stays as text in More information, with a
    note. ``strict`` keeps the import all or nothing: any problem raises ApplicationError with
    ``extra["problems"]`` and leaves the project unchanged. Numbers come from the file names
    (``0007-x.md``, ``adr007-x.md``) or the title; files without one are numbered after the rest."""
    parsed, problems, skipped = madr.parse_files(files)
    if not parsed and not problems:
        raise ApplicationError(NOTHING_TO_IMPORT, {"problems": {}, "skipped": skipped})
    project = lock_project(project)
    existing = dict(Decision.objects.filter(project=project).values_list("number", "pk"))
    notes: dict[str, list[str]] = {adr.source: list(adr.notes) for adr in parsed}

    numbers: dict[int, madr.ParsedADR] = {}
    for adr in parsed:
        if adr.number is None:
            continue
        if adr.number in numbers:
            other = numbers[adr.number]
            problems[adr.source] = f"duplicate number {adr.number:04d}: {other.source} has it too"
            problems.setdefault(other.source, f"duplicate number {adr.number:04d}: {adr.source} has it too")
        elif adr.number in existing:
            problems[adr.source] = f"{madr.adr_ref(adr.number)} already exists in this project"
        else:
            numbers[adr.number] = adr
    # A number two files claim belongs to neither.
    numbers = {n: adr for n, adr in numbers.items() if adr.source not in problems}
    next_number = max([0, *existing, *numbers]) + 1
    for adr in parsed:
        if adr.number is None:
            adr.number = next_number
            numbers[next_number] = adr
            next_number += 1
    by_file = {adr.source.rsplit("/", 1)[-1].lower(): adr for adr in parsed if adr.source not in problems}

    edges: list[tuple[madr.ParsedADR, int, str, bool]] = []
    unresolved: dict[str, list[tuple[str, str]]] = {}
    for adr in parsed:
        for link in adr.links:
            target = _resolve_link(link.target, by_file=by_file, numbers=numbers, existing=existing)
            word = ("superseded by" if link.reverse else "supersedes") if link.kind == "supersedes" else link.kind
            if word == "amends" and link.reverse:
                word = "amended by"
            if target is None:
                unresolved.setdefault(adr.source, []).append((word, link.target))
                notes[adr.source].append(
                    f'links to "{link.target}", which is neither in these files nor in the project; kept as text'
                )
            elif target == adr.number:
                notes[adr.source].append("links to itself; the link is left out")
            else:
                edges.append((adr, target, link.kind, link.reverse))
    if strict:
        for adr in parsed:
            if adr.source in unresolved and adr.source not in problems:
                problems[adr.source] = notes[adr.source][-1]

    created: dict[int, Decision] = {}
    imported: set[str] = set()
    if not (strict and problems):
        for adr in sorted(parsed, key=lambda a: a.number or 0):
            if adr.source in problems:
                continue
            try:
                with transaction.atomic():  # each file whole or not at all
                    decision = new_decision(
                        project=project,
                        user=user,
                        status=adr.status,
                        options=[o.as_dict() for o in adr.options],
                        fields=_import_fields(project, adr, unresolved.get(adr.source, [])),
                        number=adr.number,
                        slug=adr.slug or default_slug(adr.title),
                        actor_label=f"import of {adr.source.rsplit('/', 1)[-1]}"[:150],
                        note=f"Imported from {adr.source.rsplit('/', 1)[-1]} ({adr.format})",
                    )
                    if adr.status_label or adr.external_id:
                        decision.status_label = adr.status_label
                        decision.external_id = adr.external_id
                        decision.save(update_fields=["status_label", "external_id"])
                    created[adr.number] = decision
                    imported.add(adr.source)
            except ApplicationError as exc:
                problems[adr.source] = exc.message
    if problems and (strict or not created):
        raise ApplicationError(
            IMPORT_FAILED.format(count=len(problems)),
            {"problems": dict(sorted(problems.items())), "skipped": skipped},
        )

    pks = {**existing, **{n: d.pk for n, d in created.items()}}
    seen: set[tuple[int, int, str]] = set()
    rows = []
    for adr, target, kind, reverse in edges:
        if adr.number not in pks or target not in pks:
            continue  # one end was not imported; its file is reported
        source_pk, target_pk = pks[adr.number], pks[target]
        key = (target_pk, source_pk, kind) if reverse else (source_pk, target_pk, kind)
        if key in seen:
            continue
        seen.add(key)
        rows.append(DecisionLink(from_decision_id=key[0], to_decision_id=key[1], kind=kind, created_by=user))
    existing_links = set(
        DecisionLink.objects.filter(from_decision__project=project).values_list(
            "from_decision_id", "to_decision_id", "kind"
        )
    )
    DecisionLink.objects.bulk_create(
        [r for r in rows if (r.from_decision_id, r.to_decision_id, r.kind) not in existing_links]
    )
    return ImportReport(
        decisions=[created[n] for n in sorted(created)],
        problems=dict(sorted(problems.items())),
        skipped=skipped,
        notes={name: items for name, items in sorted(notes.items()) if items and name in imported},
    )
