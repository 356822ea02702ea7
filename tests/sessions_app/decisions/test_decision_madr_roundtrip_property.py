"""render(parse(render(d))) == render(d) for generated decisions (no database)."""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_app.decisions import madr

WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßЖ漢"
PUNCT = " .,;:!?'\"()[]*-_/&%+=@$"


def _one_line(text: str) -> str:
    return " ".join(text.split())


line = st.text(alphabet=WORD_CHARS + PUNCT, min_size=1, max_size=40).map(_one_line).filter(bool)
names = st.lists(line, max_size=4, unique=True)
# Markdown paragraphs; a line never starts like a heading, a fence or a point of an option.
paragraph_line = st.text(alphabet=WORD_CHARS + PUNCT + "#`", min_size=0, max_size=50).filter(
    lambda s: (
        not s.lstrip().startswith(("#", "```", "~~~"))
        and "because" not in s.lower()
        and not s.lower().startswith("chosen option")
    )
)
markdown = st.lists(paragraph_line, max_size=5).map(lambda lines: "\n".join(lines).strip())
slug = st.from_regex(r"[a-z0-9]+(-[a-z0-9]+){0,3}", fullmatch=True)


@st.composite
def decisions(draw):
    titles = draw(st.lists(line.filter(lambda s: '", because' not in s), min_size=0, max_size=4, unique=True))
    options = [
        madr.OptionData(
            title=t,
            description=draw(markdown),
            good=draw(names),
            neutral=draw(names),
            bad=draw(names),
        )
        for t in titles
    ]
    chosen = draw(st.sampled_from(titles)) if titles and draw(st.booleans()) else ""
    return madr.ExportDecision(
        number=draw(st.integers(1, 9999)),
        slug=draw(slug),
        title=draw(line),
        status=draw(st.sampled_from(madr.STATUSES)),
        date=draw(st.dates(datetime.date(1990, 1, 1), datetime.date(2100, 1, 1))),
        decision_makers=draw(names),
        consulted=draw(names),
        informed=draw(names),
        tags=draw(st.lists(slug, max_size=3, unique=True)),
        prd_reference=draw(st.sampled_from(["", "PRD-7", "https://example.com/prd/7"])),
        context=draw(markdown),
        decision_drivers=draw(names),
        options=options,
        chosen_option=chosen,
        justification=draw(markdown),
        consequences=draw(markdown),
        confirmation=draw(markdown),
        more_information=draw(markdown),
        links=[],
    )


def _reparsed(d: madr.ExportDecision) -> madr.ExportDecision:
    adr = madr.parse(d.file_name, madr.render(d))
    return madr.ExportDecision(
        number=adr.number,
        slug=adr.slug,
        title=adr.title,
        status=adr.status,
        date=adr.date,
        decision_makers=adr.decision_makers,
        consulted=adr.consulted,
        informed=adr.informed,
        tags=adr.tags,
        prd_reference=adr.prd_reference,
        context=adr.context,
        decision_drivers=adr.decision_drivers,
        options=adr.options,
        chosen_option=adr.chosen_option,
        justification=adr.justification,
        consequences=adr.consequences,
        confirmation=adr.confirmation,
        more_information=adr.more_information,
        links=[],
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decisions())
def test_render_parse_render_is_identical(d):
    first = madr.render(d)
    assert madr.render(_reparsed(d)) == first
