"""MADR export and import: the byte-identical round trip, MADR 2/3 (Log4brains) and adr-tools
(Nygard) files, and bad files reported by name with nothing half-imported."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sessions_app.decisions import madr, selectors
from sessions_app.decisions.models import Decision, DecisionLink, DecisionOption, StatusChange
from sessions_app.decisions.services import hooks, importing, writes
from teams_app.errors import ApplicationError
from teams_app.models import Membership, Project
from tests.sessions_app.decisions.builders import approve, make_design, open_point

pytestmark = pytest.mark.django_db
D = Decision.Status


def export(project: Project) -> dict[str, str]:
    return {row.file_name: madr.render(row) for row in selectors.decisions_for_export(project=project)}


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def rich_log(project, member_factory):
    """A log with every MADR field, every status and every link kind."""
    design = make_design(project)
    po = member_factory(Membership.Role.PRODUCT_OWNER)
    owner = member_factory(Membership.Role.OWNER)
    hooks.decision_from_key_question(question=design.question)
    point = open_point(design.session)
    hooks.decisions_accept_from_validation(point=point, response=approve(point, po), approvers=[po])
    full = writes.decision_create(
        project=project,
        user=owner,
        status=D.PROPOSED,
        title="Store points in PostgreSQL — not in Redis",
        date=datetime.date(2024, 2, 29),
        decision_makers=["Doe, Jane", "Ünal Çelik"],
        consulted=["yes", "42"],
        informed=["Support team"],
        tags=["storage", "loyalty"],
        prd=design.prd,
        context=md("""
            Points are money-like: a lost write is a support ticket.

            ```sh
            ## not a heading, inside a fence
            psql -c 'select 1'
            ```

            | store | durable |
            |---|---|
            | redis | no |
        """),
        decision_drivers=["Durability", "Operational cost: one more system?"],
        chosen_option='PostgreSQL "ledger" table',
        justification="it is durable and we already run it.\n\nSecond paragraph.",
        consequences="* Good, because backups exist\n* Bad, because one more schema",
        confirmation="A migration test checks the ledger constraints.",
        more_information="See [the outbox note](https://example.com/outbox).",
        options=[
            {
                "title": 'PostgreSQL "ledger" table',
                "description": "A table with a check constraint.\n\nAnd more.",
                "good": ["durable", "transactions"],
                "neutral": ["needs a migration"],
                "bad": ["one more schema"],
            },
            {"title": "Redis hash", "bad": ["not durable by default"]},
            {"title": "Event-sourced store"},
        ],
    )
    writes.decision_set_status(decision=full, to_status=D.ACCEPTED, actor=owner)
    old = writes.decision_create(
        project=project, user=owner, status=D.PROPOSED, title="One database for all services"
    )
    writes.decision_set_status(decision=old, to_status=D.ACCEPTED, actor=owner)
    a = writes.decision_supersede(old=old, user=owner, title="Orders own their database", status=D.ACCEPTED)
    writes.decision_supersede(
        old=old, user=owner, title="Points own their database", justification="Split by domain."
    )
    writes.decision_link(from_decision=a, to_decision=full, kind="amends")
    writes.decision_link(from_decision=full, to_decision=a, kind="relates")
    rejected = writes.decision_create(project=project, user=owner, status=D.PROPOSED, title="Use MongoDB")
    writes.decision_set_status(decision=rejected, to_status=D.REJECTED, actor=owner)
    deprecated = writes.decision_create(project=project, user=owner, status=D.PROPOSED, title="Use XML for events")
    writes.decision_set_status(decision=deprecated, to_status=D.ACCEPTED, actor=owner)
    writes.decision_set_status(decision=deprecated, to_status=D.DEPRECATED, actor=owner)
    writes.decision_create(project=project, user=owner, title="Draft: maybe GraphQL")
    return project


def test_export_is_madr_4(rich_log):
    files = export(rich_log)
    text = files["0002-store-points-in-postgresql-not-in-redis.md"]
    today = timezone.localdate().isoformat()  # accepting it updated the MADR date
    assert text.startswith(
        md(f"""
        ---
        status: accepted
        date: {today}
        decision-makers:
        - Doe, Jane
        - Ünal Çelik
        - owner-shop
        consulted:
        - 'yes'
        - '42'
        informed:
        - Support team
        tags:
        - storage
        - loyalty
        prd: PRD-42
        relates:
        - ADR-0004
        ---
        # Store points in PostgreSQL — not in Redis
    """)
    )
    for heading in (
        "## Context and Problem Statement",
        "## Decision Drivers",
        "## Considered Options",
        "## Decision Outcome",
        "### Consequences",
        "### Confirmation",
        "## Pros and Cons of the Options",
        "### Redis hash",
        "## More Information",
    ):
        assert f"\n{heading}\n" in text, heading
    assert '\nChosen option: "PostgreSQL "ledger" table", because it is durable and we already run it.\n' in text
    assert (
        "\n* Good, because durable\n* Good, because transactions\n* Neutral, because needs a migration\n* Bad, because one more schema\n"
        in text
    )
    assert "### Event-sourced store" not in text  # an option without pros and cons is only listed
    assert "supersedes:\n- ADR-0003\n" in files["0004-orders-own-their-database.md"]
    assert "amends:\n- ADR-0002\n" in files["0004-orders-own-their-database.md"]
    assert "status: superseded by ADR-0004, ADR-0005\n" in files["0003-one-database-for-all-services.md"]
    assert sorted(files) == [
        "0001-how-should-the-change-talk-to-the-services-it-depends-on.md",
        "0002-store-points-in-postgresql-not-in-redis.md",
        "0003-one-database-for-all-services.md",
        "0004-orders-own-their-database.md",
        "0005-points-own-their-database.md",
        "0006-use-mongodb.md",
        "0007-use-xml-for-events.md",
        "0008-draft-maybe-graphql.md",
    ]


def test_export_import_export_is_byte_identical(rich_log):
    first = export(rich_log)
    empty = Project.objects.create(name="Copy", slug="copy")
    imported = importing.decisions_import(project=empty, files=list(first.items())).decisions
    assert [d.number for d in imported] == list(range(1, 9))
    second = export(empty)
    assert list(second) == list(first)
    for name in first:
        assert second[name].encode() == first[name].encode(), name
    # The rows, not only the text, came back.
    copy = Decision.objects.get(project=empty, number=2)
    assert copy.status == D.ACCEPTED and copy.options.count() == 3 and copy.tags == ["storage", "loyalty"]
    assert (
        DecisionLink.objects.filter(from_decision__project=empty).count()
        == DecisionLink.objects.filter(from_decision__project=rich_log).count()
    )
    assert copy.status_changes.get().note == "Imported from 0002-store-points-in-postgresql-not-in-redis.md (madr4)"


def test_commands_round_trip_through_directories(rich_log, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    call_command("export_decisions", "--project", "shop", str(first))
    Project.objects.create(name="Copy", slug="copy")
    call_command("import_decisions", "--project", "copy", str(first))
    call_command("export_decisions", "--project", "copy", str(second))
    names = sorted(p.name for p in first.iterdir())
    assert len(names) == 8 and names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_zip_bytes_are_stable(rich_log):
    rows = selectors.decisions_for_export(project=rich_log)
    assert madr.export_zip(rows) == madr.export_zip(selectors.decisions_for_export(project=rich_log))


# -- other formats -------------------------------------------------------------------------------

MADR2 = md("""
    # Use Markdown Architectural Decision Records

    * Status: accepted
    * Deciders: Alice, Bob
    * Date: 2020-03-01

    Technical Story: https://example.com/issues/1 <!-- optional -->

    ## Context and Problem Statement

    We want to record architectural decisions made in this project.

    ## Decision Drivers <!-- optional -->

    * Easy to write
    * Readable in plain text

    ## Considered Options

    * MADR 2.1.2
    * Michael Nygard's template
    * Formless

    ## Decision Outcome

    Chosen option: "MADR 2.1.2", because it is lean and structured.

    ### Positive Consequences <!-- optional -->

    * Decisions are easy to find

    ### Negative Consequences <!-- optional -->

    * Some learning curve

    ## Pros and Cons of the Options <!-- optional -->

    ### MADR 2.1.2

    * Good, because it is structured
    * Bad, because it is longer

    ### Michael Nygard's template

    The first template.

    * Good, because it is well known

    ## Links

    * Refined by [ADR-0003](0003-use-madr-3.md)
""")

MADR3 = md("""
    ---
    status: "superseded by [ADR-0004](0004-use-madr-4.md)"
    date: 2022-10-01
    deciders: Alice, Bob
    consulted: [Carol]
    ---
    # Use MADR 3

    ## Context and Problem Statement

    MADR 3 adds front matter.

    ## Decision Outcome

    Chosen option: "MADR 3", because it has front matter.

    ### Consequences

    * Good, because tools read the metadata

    ## Validation

    Reviewed in pull requests.
""")

MADR4 = md("""
    ---
    status: accepted
    date: 2024-05-01
    decision-makers: [Alice]
    ---
    # Use MADR 4

    ## Context and Problem Statement

    MADR 4 renames Validation to Confirmation.

    ## Decision Outcome

    Chosen option: "MADR 4", because it is current.

    ### Confirmation

    Reviewed in pull requests.
""")

LOG4BRAINS = md("""
    # Use Log4brains to publish the ADRs

    - Status: draft
    - Date: 2021-03-01
    - Tags: doc, Tooling

    ## Context and Problem Statement

    We want a static site of our decisions.

    ## Decision Outcome

    Chosen option: "Log4brains"
""")


def test_madr_2_3_and_log4brains_files_import(project):
    files = [
        ("0001-use-markdown-architectural-decision-records.md", MADR2),
        ("0003-use-madr-3.md", MADR3),
        ("0004-use-madr-4.md", MADR4),
        ("20210301-use-log4brains.md", LOG4BRAINS),
        ("README.md", "# Decisions\n\nAn index page, not an ADR."),
        ("template.md", "# {title}"),
    ]
    imported = importing.decisions_import(project=project, files=files).decisions
    by_number = {d.number: d for d in imported}
    assert sorted(by_number) == [1, 3, 4, 5]  # the date-prefixed Log4brains file is numbered after the rest

    madr2 = by_number[1]
    assert (madr2.title, madr2.status, madr2.date) == (
        "Use Markdown Architectural Decision Records",
        D.ACCEPTED,
        datetime.date(2020, 3, 1),
    )
    assert madr2.decision_makers == ["Alice", "Bob"]
    assert madr2.decision_drivers == ["Easy to write", "Readable in plain text"]
    assert (madr2.chosen_option, madr2.justification) == ("MADR 2.1.2", "it is lean and structured.")
    assert madr2.consequences == "* Good, because Decisions are easy to find\n* Bad, because Some learning curve"
    assert "Technical story: https://example.com/issues/1" in madr2.more_information
    options = list(madr2.options.all())
    assert [o.title for o in options] == ["MADR 2.1.2", "Michael Nygard's template", "Formless"]
    assert (options[0].good, options[0].bad) == (["it is structured"], ["it is longer"])
    assert (options[1].description, options[1].good) == ("The first template.", ["it is well known"])

    madr3 = by_number[3]
    assert (madr3.status, madr3.decision_makers, madr3.consulted) == (D.SUPERSEDED, ["Alice", "Bob"], ["Carol"])
    assert madr3.confirmation == "Reviewed in pull requests."
    assert madr3.consequences == "* Good, because tools read the metadata"
    assert by_number[4].confirmation == "Reviewed in pull requests."

    log4brains = by_number[5]
    assert (log4brains.status, log4brains.tags, log4brains.slug) == (D.DRAFT, ["doc", "tooling"], "use-log4brains")
    assert log4brains.chosen_option == "Log4brains" and log4brains.justification == ""

    links = set(DecisionLink.objects.values_list("from_decision__number", "kind", "to_decision__number"))
    assert links == {(4, "supersedes", 3), (1, "relates", 3)}


NYGARD = {
    "0001-record-architecture-decisions.md": md("""
        # 1. Record architecture decisions

        Date: 2024-01-01

        ## Status

        Accepted

        ## Context

        We need to record the architectural decisions made on this project.

        ## Decision

        We will use Architecture Decision Records, as described by Michael Nygard.

        ## Consequences

        See Michael Nygard's article, linked above.
    """),
    "0002-use-postgres.md": md("""
        # 2. Use Postgres

        Date: 2024-02-01

        ## Status

        Superseded by [3. Use Postgres with an outbox](0003-use-postgres-with-an-outbox.md)

        ## Context

        Orders need a database.

        ## Decision

        We will use PostgreSQL.

        ## Consequences

        One more thing to run.
    """),
    "0003-use-postgres-with-an-outbox.md": md("""
        # 3. Use Postgres with an outbox

        Date: 2024-03-01

        ## Status

        Accepted

        Supersedes [2. Use Postgres](0002-use-postgres.md)

        Amends [1. Record architecture decisions](0001-record-architecture-decisions.md)

        ## Context

        Events were lost when the broker was down.

        ## Decision

        We will write events to an outbox table in the same transaction.

        ## Consequences

        A relay process publishes the outbox.
    """),
}


MADR4_TEMPLATE_STYLE = md("""
    ---
    # These are optional metadata elements. Feel free to remove any of them.
    status: Accepted
    date: 2024-06-01
    decision-makers: Alice, Bob
    ---

    # Use a message broker for order events

    ## Context and Problem Statement

    Orders and payments poll each other.

    <!-- This is an optional element. Feel free to remove. -->
    ## Decision Drivers

    * Fewer synchronous calls

    ## Considered Options

    * RabbitMQ
    * Kafka

    ## Decision Outcome

    Chosen option: "RabbitMQ", because the team runs it already.

    <!-- This is an optional element. Feel free to remove. -->
    ### Consequences

    * Good, because orders no longer wait for payments

    <!-- This is an optional element. Feel free to remove. -->
    ## Pros and Cons of the Options

    ### RabbitMQ

    <!-- This is an optional element. Feel free to remove. -->
    Already in the cluster.

    * Good, because it is familiar
    * Bad, because no replay
""")


def test_madr_4_files_written_from_the_template_import_without_its_comments(project):
    (d,) = importing.decisions_import(
        project=project, files=[("0001-use-a-message-broker.md", MADR4_TEMPLATE_STYLE)]
    ).decisions
    assert (d.status, d.decision_makers, d.date) == (D.ACCEPTED, ["Alice", "Bob"], datetime.date(2024, 6, 1))
    assert d.context == "Orders and payments poll each other."
    assert d.decision_drivers == ["Fewer synchronous calls"]
    assert (d.chosen_option, d.justification) == ("RabbitMQ", "the team runs it already.")
    assert d.consequences == "* Good, because orders no longer wait for payments"
    rabbit = d.options.get(title="RabbitMQ")
    assert (rabbit.description, rabbit.good, rabbit.bad) == (
        "Already in the cluster.",
        ["it is familiar"],
        ["no replay"],
    )


def test_adr_tools_nygard_files_import(project):
    imported = importing.decisions_import(project=project, files=list(NYGARD.items())).decisions
    first, second, third = imported
    assert (first.number, first.title, first.status, first.date) == (
        1,
        "Record architecture decisions",
        D.ACCEPTED,
        datetime.date(2024, 1, 1),
    )
    assert first.slug == "record-architecture-decisions"
    assert first.context == "We need to record the architectural decisions made on this project."
    assert first.justification == "We will use Architecture Decision Records, as described by Michael Nygard."
    assert first.consequences == "See Michael Nygard's article, linked above."
    assert (second.status, third.status) == (D.SUPERSEDED, D.ACCEPTED)
    links = set(DecisionLink.objects.values_list("from_decision__number", "kind", "to_decision__number"))
    assert links == {(3, "supersedes", 2), (3, "amends", 1)}  # both files name the same supersession: one link
    # Re-exported as MADR 4, then read back identically.
    files = export(project)
    assert files["0002-use-postgres.md"].startswith("---\nstatus: superseded by ADR-0003\ndate: 2024-02-01\n---\n# Use Postgres\n")
    assert "## Decision Outcome\n\nWe will use PostgreSQL.\n" in files["0002-use-postgres.md"]
    copy = Project.objects.create(name="Copy", slug="copy")
    importing.decisions_import(project=copy, files=list(files.items()))
    assert export(copy) == files


def test_links_may_point_to_decisions_already_in_the_project(project):
    writes.decision_create(project=project, user=None, title="Existing")
    text = md("""
        ---
        status: proposed
        date: 2024-01-01
        relates: [ADR-0001]
        ---
        # New one
    """)
    (new,) = importing.decisions_import(project=project, files=[("0002-new-one.md", text)]).decisions
    assert DecisionLink.objects.get().from_decision == new


# -- bad files -----------------------------------------------------------------------------------

GOOD = (
    "0001-good.md",
    "---\nstatus: accepted\ndate: 2024-01-01\n---\n# Good decision\n\n## Context and Problem Statement\n\nFine.\n",
)
BAD_FILES = {
    "no title": (
        "0002-no-title.md",
        "---\nstatus: accepted\n---\n\n## Context and Problem Statement\n\nNo heading.\n",
        "no title",
    ),
    "invalid yaml": (
        "0003-bad-yaml.md",
        "---\nstatus: [accepted\ndate: 2024-01-01\n---\n# Bad YAML\n",
        "invalid YAML front matter",
    ),
    "alias bomb": (
        "0010-bomb.md",
        "---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nconsulted: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n---\n# Bomb\n",
        "invalid YAML front matter",
    ),
    "not a mapping": ("0004-list.md", "---\n- a\n- b\n---\n# A list\n", "must be a mapping"),
    "title too long": ("0008-long.md", "---\nstatus: accepted\n---\n# " + "x" * 400 + "\n", "at most 300 characters"),
    "number taken by the file": ("0001-clash.md", "---\nstatus: accepted\n---\n# Clash\n", "duplicate number 0001"),
}


# Files that import, with a note of what was read loosely or left out (never a guess).
LOOSE_FILES = {
    "custom status": ("0005-pending.md", "---\nstatus: pending\n---\n# Pending\n", "proposed", "pending", None, []),
    "bad date": (
        "0006-bad-date.md",
        "---\nstatus: accepted\ndate: someday\n---\n# Someday\n",
        "accepted",
        "",
        None,
        ['the date "someday" is not a date that can be read; imported without a date'],
    ),
    "missing link": (
        "0007-missing-link.md",
        "---\nstatus: accepted\nsupersedes: [ADR-0042]\n---\n# Orphan\n",
        "accepted",
        "",
        None,
        ['links to "ADR-0042", which is neither in these files nor in the project; kept as text'],
    ),
    "nygard without status": (
        "0009-nygard.md",
        "# 9. Thing\n\nDate: 1 March 2024\n\n## Status\n\n## Context\n\nx\n\n## Decision\n\ny\n",
        "accepted",
        "",
        datetime.date(2024, 3, 1),
        ["no status given; imported as accepted"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_a_bad_file_is_reported_by_name_and_the_good_ones_import(project, case):
    name, text, reason = BAD_FILES[case]
    if case == "number taken by the file":  # both claim 0001: neither gets it, so nothing imports
        with pytest.raises(ApplicationError) as caught:
            importing.decisions_import(project=project, files=[GOOD, (name, text)])
        assert set(caught.value.extra["problems"]) == {name, "0001-good.md"}
        return
    report = importing.decisions_import(project=project, files=[GOOD, (name, text)])
    assert reason in report.problems[name], report.problems
    assert [d.title for d in report.decisions] == ["Good decision"]
    # The bad file left nothing behind: no row, no option, no status change.
    assert Decision.objects.count() == 1 and StatusChange.objects.count() == 1


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_strict_import_is_all_or_nothing(project, case):
    name, text, reason = BAD_FILES[case]
    with pytest.raises(ApplicationError) as caught:
        importing.decisions_import(project=project, files=[GOOD, (name, text)], strict=True)
    problems = caught.value.extra["problems"]
    assert name in problems and reason in problems[name], problems
    assert caught.value.message.startswith("Nothing was imported")
    assert not Decision.objects.exists() and not StatusChange.objects.exists() and not DecisionOption.objects.exists()


@pytest.mark.parametrize("case", list(LOOSE_FILES), ids=list(LOOSE_FILES))
def test_loose_files_import_with_a_note(project, case):
    name, text, status, label, date, notes = LOOSE_FILES[case]
    report = importing.decisions_import(project=project, files=[(name, text)])
    (d,) = report.decisions
    assert (d.status, d.status_label, d.date) == (status, label, date)
    assert report.notes.get(name, []) == notes and not report.problems


def test_strict_refuses_a_link_it_cannot_resolve(project):
    name, text, *_ = LOOSE_FILES["missing link"]
    with pytest.raises(ApplicationError) as caught:
        importing.decisions_import(project=project, files=[GOOD, (name, text)], strict=True)
    assert 'links to "ADR-0042"' in caught.value.extra["problems"][name]
    assert not Decision.objects.exists()


def test_every_bad_file_is_reported_at_once(project):
    files = [GOOD, *[(name, text) for name, text, _ in BAD_FILES.values()]]
    with pytest.raises(ApplicationError) as caught:
        importing.decisions_import(project=project, files=files)
    problems = caught.value.extra["problems"]
    assert set(problems) == {name for name, _, _ in BAD_FILES.values()} | {"0001-good.md"}  # the clash names both
    assert not Decision.objects.exists()


def test_a_number_already_in_the_project_is_refused(project):
    writes.decision_create(project=project, user=None, title="Already here")
    with pytest.raises(ApplicationError) as caught:
        importing.decisions_import(project=project, files=[GOOD])
    assert caught.value.extra["problems"] == {"0001-good.md": "ADR-0001 already exists in this project"}
    assert Decision.objects.count() == 1


def test_import_command_imports_the_good_files_and_names_the_others(project, tmp_path, capsys):
    for name, text in [GOOD, BAD_FILES["invalid yaml"][:2], BAD_FILES["no title"][:2]]:
        (tmp_path / name).write_text(text)
    (tmp_path / "template.md").write_text("# {short title}\n")
    call_command("import_decisions", "--project", "shop", str(tmp_path))
    out, err = capsys.readouterr()
    assert "0003-bad-yaml.md: not imported, invalid YAML front matter" in err
    assert "0002-no-title.md: not imported, no title" in err
    assert "template.md: skipped, a template, not an ADR" in out
    assert "Imported 1 decision(s) into shop: ADR-0001" in out
    assert list(Decision.objects.values_list("title", flat=True)) == ["Good decision"]


def test_import_command_strict_changes_nothing(project, tmp_path, capsys):
    for name, text in [GOOD, BAD_FILES["invalid yaml"][:2], BAD_FILES["no title"][:2]]:
        (tmp_path / name).write_text(text)
    with pytest.raises(CommandError, match="Nothing was imported: 2 file"):
        call_command("import_decisions", "--project", "shop", "--strict", str(tmp_path))
    assert "0003-bad-yaml.md: invalid YAML front matter" in capsys.readouterr().err
    assert not Decision.objects.exists()


def test_commands_refuse_unknown_projects_and_directories(project, tmp_path):
    with pytest.raises(CommandError, match="no project"):
        call_command("export_decisions", "--project", "nope", str(tmp_path))
    with pytest.raises(CommandError, match="not a directory"):
        call_command("import_decisions", "--project", "shop", str(Path(tmp_path) / "missing"))
    with pytest.raises(CommandError, match="No ADR markdown files"):
        call_command("import_decisions", "--project", "shop", str(tmp_path))
