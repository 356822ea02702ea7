"""Public ADR collections that others wrote (tests/fixtures/public/adr, origins in its README)
import whole: MADR's own decisions, Log4brains' own, Backstage's, joelparkerhenderson's examples
and adr-tools' own plus a supersession it wrote."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from sessions_app.decisions import madr, selectors
from sessions_app.decisions.models import Decision, DecisionLink
from sessions_app.decisions.services import importing

ADR = Path(__file__).resolve().parents[2] / "fixtures" / "public" / "adr"
D = datetime.date


def files(folder: str) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((ADR / folder).glob("*.md"))]


def statuses(project) -> dict[str, tuple[str, str, datetime.date | None]]:
    return {
        d.title: (d.status, d.status_label, d.date) for d in Decision.objects.filter(project=project).order_by("number")
    }


def links(project) -> set[tuple[int, str, int]]:
    return set(
        DecisionLink.objects.filter(from_decision__project=project).values_list(
            "from_decision__number", "kind", "to_decision__number"
        )
    )


def test_madr_own_decisions_import_from_0000_with_their_custom_status(project):
    report = importing.decisions_import(project=project, files=files("madr"))
    assert not report.problems
    assert report.skipped == {"adr-template.md": "a template, not an ADR", "index.md": "an index or README, not an ADR"}
    assert [d.number for d in report.decisions] == list(range(0, 19))
    first = report.decisions[0]
    assert (first.adr_id, first.title) == ("ADR-0000", "Use Markdown Architectural Decision Records")
    on_hold = Decision.objects.get(project=project, number=3)
    assert (on_hold.status, on_hold.status_label) == ("proposed", "on hold")  # kept as written, filed as open
    # MADR's files give no date: none is invented.
    assert set(Decision.objects.filter(project=project).values_list("date", flat=True)) == {None}
    assert Decision.objects.filter(project=project, status="accepted").count() == 18
    # Exported back, the custom status is written as it was.
    assert madr.render(selectors.decisions_for_export(project=project, numbers=[3])[0]).startswith(
        "---\nstatus: on hold\n---\n# Write Own MADR Tooling\n"
    )


def test_log4brains_own_decisions_keep_their_ids_links_and_dates(project):
    report = importing.decisions_import(project=project, files=files("log4brains"))
    assert not report.problems and not report.notes
    assert set(report.skipped) == {"README.md", "index.md", "template.md"}
    by_id = {d.external_id: d for d in report.decisions}
    assert len(by_id) == 9
    number_id = by_id["20200926-use-the-adr-number-as-its-unique-id"]
    slug_id = by_id["20201016-use-the-adr-slug-as-its-unique-id"]
    assert (number_id.status, number_id.date) == ("superseded", D(2020, 9, 26))
    assert (slug_id.status, slug_id.date) == ("accepted", D(2020, 10, 16))
    assert links(project) == {(slug_id.number, "supersedes", number_id.number)}
    # Links to web pages stay links in the text.
    lerna = by_id["20200925-multi-packages-architecture-in-a-monorepo-with-yarn-and-lerna"]
    assert "[A Beginner's Guide to Lerna with Yarn Workspaces](https://medium.com/" in lerna.more_information
    assert {d.date for d in report.decisions} >= {D(2020, 9, 24), D(2021, 1, 13)}


def test_backstage_adrs_take_their_title_number_and_status_table(project):
    report = importing.decisions_import(project=project, files=files("backstage"))
    assert not report.problems
    assert report.skipped == {"adr000-template.md": "a template, not an ADR"}
    assert statuses(project) == {
        "Architecture Decision Record (ADR) log": ("accepted", "", None),
        "Default Software Catalog File Format": ("proposed", "Open", D(2020, 5, 17)),
        "Proper use of HTTP fetching libraries": ("accepted", "", None),
    }
    assert [d.number for d in report.decisions] == [1, 2, 13]
    assert report.notes["adr001-add-adr-log.md"] == ["no status given; imported as accepted"]


def test_joelparkerhenderson_examples_read_approved_and_written_dates(project):
    report = importing.decisions_import(project=project, files=files("joelparkerhenderson"))
    assert not report.problems
    assert statuses(project) == {
        "continuous integration": ("accepted", "", None),
        "Go programming language": ("accepted", "", None),
        "Microsoft Azure cloud infrastructure": ("accepted", "Approved", D(2021, 10, 15)),
        "Rust programming language": ("accepted", "", D(2021, 12, 1)),
        "Vue front-end JavaScript library": ("proposed", "", None),
        "work from home": ("accepted", "", D(2021, 7, 1)),
    }
    assert report.notes["vue-front-end-javascript-library.md"] == [
        'the status "[Draft/Final/Postponed/Cancelled]" is a placeholder; imported as proposed',
        'the date "[Date of decision]" is a placeholder; imported without a date',
    ]
    azure = Decision.objects.get(project=project, title="Microsoft Azure cloud infrastructure")
    assert azure.decision_makers == ["Chief Information Officer"]


def test_adr_tools_superceded_by_is_a_supersession(project):
    report = importing.decisions_import(project=project, files=files("adr-tools-new"))
    assert not report.problems and not report.notes
    assert statuses(project) == {
        "Record architecture decisions": ("accepted", "", D(2024, 3, 5)),
        "Use PostgreSQL for orders": (
            "superseded",
            "Superceded by [3. Use CockroachDB for orders](0003-use-cockroachdb-for-orders.md)",
            D(2024, 3, 5),
        ),
        "Use CockroachDB for orders": ("accepted", "", D(2024, 6, 10)),
    }
    assert links(project) == {(3, "supersedes", 2)}  # one link, not a "relates"
    (row,) = selectors.decisions_for_export(project=project, numbers=[2])
    assert madr.render(row).startswith("---\nstatus: superseded by ADR-0003\ndate: 2024-03-05\n---\n")


def test_adr_tools_own_log_imports_with_its_amendments(project):
    report = importing.decisions_import(project=project, files=files("adr-tools"))
    assert not report.problems and len(report.decisions) == 9
    assert links(project) == {(9, "amends", 5)}
    assert Decision.objects.get(project=project, number=8).date == D(2017, 2, 21)


@pytest.mark.parametrize("folder", ["madr", "log4brains", "backstage", "joelparkerhenderson", "adr-tools-new"])
def test_each_collection_survives_an_export_and_reimport(project, folder, tmp_path):
    from teams_app.models import Project

    importing.decisions_import(project=project, files=files(folder))
    call_command("export_decisions", "--project", project.slug, str(tmp_path / "out"))
    copy = Project.objects.create(name="Copy", slug="copy")
    report = importing.decisions_import(project=copy, files=files_in(tmp_path / "out"))
    assert not report.problems
    # Categories and dates come back; a written status too, except "Superceded by [3. ...]",
    # which comes back as the MADR 4 "superseded by ADR-0003" its link carries.
    assert {t: (s, d) for t, (s, _, d) in statuses(copy).items()} == {
        t: (s, d) for t, (s, _, d) in statuses(project).items()
    }
    assert {t: lbl for t, (s, lbl, _) in statuses(copy).items() if s != "superseded"} == {
        t: lbl for t, (s, lbl, _) in statuses(project).items() if s != "superseded"
    }
    assert links(copy) == links(project)


def files_in(directory: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(directory.glob("*.md"))]
