"""The MADR markdown format: render a decision as a MADR 4 file ``NNNN-slug.md`` (or in the
Log4brains flavour) and parse MADR 4, MADR 2/3 (Log4brains), adr-tools (Nygard) and free-form ADR
files back into plain data.

Reading is forgiving, as real collections need: numbering may start at 0000, any status text is
kept as written and mapped to a category (:func:`status_category`), dates are read in the common
written forms and never invented, front matter ``title:`` is a title, external links stay links in
the text, and templates, indexes and READMEs are skipped with a reason (:func:`skip_reason`).

Pure functions, no database: :mod:`sessions_app.decisions.services.importing` turns parsed files
into rows and :mod:`sessions_app.decisions.selectors` feeds the renderer. ``render(parse(render(d)))``
is ``render(d)`` byte for byte; the tests hold that.
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.utils.text import slugify

from teams_app.errors import ApplicationError
from teams_app.inventory.safe_yaml import load_documents

MAX_FILE_BYTES = 512 * 1024
STATUSES = ("draft", "proposed", "accepted", "rejected", "deprecated", "superseded")
LINK_KINDS = ("supersedes", "amends", "relates")
FORMATS = ("madr4", "log4brains")
INDEX_FILES = frozenset({"readme.md", "index.md", "_index.md", "toc.md", "summary.md"})
# The first word of a status as people write it -> the category the filters and transitions use.
# MADR lets a project name its own statuses; anything not listed here counts as still open.
STATUS_WORDS = {
    "draft": "draft", "wip": "draft",
    "proposed": "proposed", "proposal": "proposed", "open": "proposed", "pending": "proposed",
    "review": "proposed", "hold": "proposed", "postponed": "proposed", "discussion": "proposed",
    "accepted": "accepted", "approved": "accepted", "adopted": "accepted", "agreed": "accepted",
    "decided": "accepted", "done": "accepted", "final": "accepted", "implemented": "accepted",
    "active": "accepted", "completed": "accepted",
    "rejected": "rejected", "declined": "rejected", "cancelled": "rejected", "canceled": "rejected",
    "withdrawn": "rejected", "abandoned": "rejected",
    "deprecated": "deprecated", "obsolete": "deprecated", "retired": "deprecated",
    "superseded": "superseded", "superceded": "superseded", "replaced": "superseded",
}  # fmt: skip

CONTEXT = "Context and Problem Statement"
DRIVERS = "Decision Drivers"
OPTIONS = "Considered Options"
OUTCOME = "Decision Outcome"
CONSEQUENCES = "Consequences"
CONFIRMATION = "Confirmation"
PROS_CONS = "Pros and Cons of the Options"
MORE = "More Information"
POINT_PREFIX = {"good": "Good, because ", "neutral": "Neutral, because ", "bad": "Bad, because "}


class MadrError(Exception):
    """A file that cannot be read as an ADR; the message is written for a person."""


@dataclass
class OptionData:
    title: str
    description: str = ""
    good: list[str] = field(default_factory=list)
    neutral: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "good": self.good,
            "neutral": self.neutral,
            "bad": self.bad,
        }


@dataclass
class LinkRef:
    """``kind`` from this file to ``target`` (``reverse``: from ``target`` to this file)."""

    kind: str
    target: str
    reverse: bool = False


@dataclass
class ParsedADR:
    source: str
    title: str
    number: int | None = None
    slug: str = ""
    status: str = "proposed"
    date: datetime.date | None = None
    decision_makers: list[str] = field(default_factory=list)
    consulted: list[str] = field(default_factory=list)
    informed: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    prd_reference: str = ""
    context: str = ""
    decision_drivers: list[str] = field(default_factory=list)
    options: list[OptionData] = field(default_factory=list)
    chosen_option: str = ""
    justification: str = ""
    consequences: str = ""
    confirmation: str = ""
    more_information: str = ""
    links: list[LinkRef] = field(default_factory=list)
    format: str = "madr4"
    status_label: str = ""  # the status as written when it says more than its category
    external_id: str = ""  # an id that is not a number, e.g. Log4brains' 20201016-use-the-adr-slug
    notes: list[str] = field(default_factory=list)  # what was read loosely or left out, for the report


@dataclass(frozen=True)
class ExportLink:
    kind: str
    target_number: int


@dataclass(frozen=True)
class ExportDecision:
    """What the renderer needs from a decision; built by the selectors."""

    number: int
    slug: str
    title: str
    status: str
    date: datetime.date | None
    decision_makers: Sequence[str]
    consulted: Sequence[str]
    informed: Sequence[str]
    tags: Sequence[str]
    prd_reference: str
    context: str
    decision_drivers: Sequence[str]
    options: Sequence[OptionData]
    chosen_option: str
    justification: str
    consequences: str
    confirmation: str
    more_information: str
    links: Sequence[ExportLink]
    status_label: str = ""
    superseded_by: Sequence[int] = ()
    external_id: str = ""

    @property
    def file_name(self) -> str:
        return file_name(self.number, self.slug)

    def file_name_for(self, fmt: str) -> str:
        """Log4brains names an ADR by its file name, so an imported Log4brains id is kept."""
        if fmt == "log4brains" and self.external_id:
            return f"{self.external_id}.md"
        return self.file_name

    @property
    def status_text(self) -> str:
        """The status MADR 4 writes: ``superseded by ADR-0005``, a custom status as it was written,
        else the category."""
        if self.status == "superseded" and self.superseded_by:
            return "superseded by " + ", ".join(adr_ref(n) for n in sorted(set(self.superseded_by)))
        if self.status_label and status_category(self.status_label) == self.status:
            return self.status_label
        return self.status


def adr_ref(number: int) -> str:
    return f"ADR-{number:04d}"


def file_name(number: int, slug: str) -> str:
    return f"{number:04d}-{slug}.md"


def status_category(text: str) -> str:
    """The category of a written status: "Approved" -> accepted, "on hold" -> proposed."""
    for word in re.findall(r"[a-z]+", str(text).lower()):
        if word in STATUS_WORDS:
            return STATUS_WORDS[word]
        if word not in ("on", "in", "under", "is", "the", "status"):
            break
    return "proposed"


# -- export --------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _front_matter(d: ExportDecision) -> str:
    data: dict[str, Any] = {"status": d.status_text}
    if d.date is not None:
        data["date"] = d.date
    for key, values in (
        ("decision-makers", d.decision_makers),
        ("consulted", d.consulted),
        ("informed", d.informed),
        ("tags", d.tags),
    ):
        if values:
            data[key] = [_one_line(v) for v in values]
    if d.prd_reference:
        data["prd"] = d.prd_reference
    for kind in LINK_KINDS:
        targets = sorted({link.target_number for link in d.links if link.kind == kind})
        if targets:
            data[kind] = [adr_ref(n) for n in targets]
    dumped = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000)
    return f"---\n{dumped}---\n"


def render(d: ExportDecision) -> str:
    """One decision as a MADR 4 markdown file (front matter, then the MADR sections that have content)."""
    parts: list[str] = [_front_matter(d), f"# {_one_line(d.title)}\n"]

    def section(heading: str, body: str) -> None:
        if body.strip():
            parts.append(f"\n{heading}\n\n{body.strip()}\n")

    section(f"## {CONTEXT}", d.context)
    section(f"## {DRIVERS}", "\n".join(f"* {_one_line(x)}" for x in d.decision_drivers))
    section(f"## {OPTIONS}", "\n".join(f"* {_one_line(o.title)}" for o in d.options))
    if d.chosen_option:
        outcome = f'Chosen option: "{_one_line(d.chosen_option)}"'
        if d.justification.strip():
            outcome += f", because {d.justification.strip()}"
    else:
        outcome = d.justification
    if outcome.strip() or d.consequences.strip() or d.confirmation.strip():
        parts.append(f"\n## {OUTCOME}\n")
        if outcome.strip():
            parts.append(f"\n{outcome.strip()}\n")
        section(f"### {CONSEQUENCES}", d.consequences)
        section(f"### {CONFIRMATION}", d.confirmation)
    described = [o for o in d.options if o.description.strip() or o.good or o.neutral or o.bad]
    if described:
        parts.append(f"\n## {PROS_CONS}\n")
        for o in described:
            parts.append(f"\n### {_one_line(o.title)}\n")
            if o.description.strip():
                parts.append(f"\n{o.description.strip()}\n")
            points = [
                f"* {POINT_PREFIX[kind]}{_one_line(p)}" for kind in ("good", "neutral", "bad") for p in getattr(o, kind)
            ]
            if points:
                parts.append("\n" + "\n".join(points) + "\n")
    section(f"## {MORE}", d.more_information)
    return "".join(parts)


def render_log4brains(d: ExportDecision, stems: dict[int, str]) -> str:
    """One decision as Log4brains 1.1 reads it: MADR 2 with the metadata as a list under the title
    (Log4brains ignores front matter), a status it knows (a custom one would read as draft), and
    links by file name, which is how Log4brains names an ADR. ``stems``: number -> file name
    without ``.md`` of every exported decision."""

    def ref(number: int) -> str:
        stem = stems.get(number, f"{number:04d}")
        return f"[{stem}]({stem}.md)"

    if d.status == "superseded" and d.superseded_by:
        status = "superseded by " + ref(min(d.superseded_by))
    else:
        status = d.status
    meta = [f"- Status: {status}"]
    if d.date is not None:
        meta.append(f"- Date: {d.date.isoformat()}")
    if d.decision_makers:
        meta.append("- Deciders: " + ", ".join(_one_line(v) for v in d.decision_makers))
    for label, values in (("Consulted", d.consulted), ("Informed", d.informed)):
        if values:
            meta.append(f"- {label}: " + ", ".join(_one_line(v) for v in values))
    if d.tags:
        meta.append("- Tags: " + ", ".join(d.tags))
    if d.prd_reference:
        meta.append(f"- PRD: {_one_line(d.prd_reference)}")
    body = render(d).split("\n---\n", 1)[1]  # the MADR 4 body, after its front matter
    title, _, sections = body.partition("\n")
    links = [
        f"- {word} {ref(link.target_number)}"
        for kind, word in (("supersedes", "Supersedes"), ("amends", "Amends"), ("relates", "Relates to"))
        for link in sorted(d.links, key=lambda x: x.target_number)
        if link.kind == kind
    ]
    text = f"{title}\n\n" + "\n".join(meta) + "\n" + sections
    if links:
        text += "\n## Links\n\n" + "\n".join(links) + "\n"
    return text


def export_files(decisions: Iterable[ExportDecision], *, fmt: str = "madr4") -> list[tuple[str, str]]:
    """(file name, text) of every decision in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown ADR format {fmt!r}; expected one of {', '.join(FORMATS)}")
    rows = list(decisions)
    if fmt == "madr4":
        return [(d.file_name, render(d)) for d in rows]
    stems = {d.number: d.file_name_for(fmt).removesuffix(".md") for d in rows}
    return [(d.file_name_for(fmt), render_log4brains(d, stems)) for d in rows]


def export_zip(decisions: Iterable[ExportDecision], *, folder: str = "decisions", fmt: str = "madr4") -> bytes:
    """A zip of ``folder/NNNN-slug.md`` files; stable bytes for the same decisions."""
    rows = list(decisions)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for d, (name, text) in zip(rows, export_files(rows, fmt=fmt), strict=True):
            day = d.date or ZIP_EPOCH  # a zip entry needs a time; an undated decision gets the format's first day
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(day.year, day.month, day.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


ZIP_EPOCH = datetime.date(1980, 1, 1)


# -- import --------------------------------------------------------------------------------------

HEADING = re.compile(r"^(#{1,3})[ \t]+(.+?)[ \t]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
COMMENT_LINE = re.compile(r"^[ \t]*<!--[^\n]*?-->[ \t]*(?:\n|\Z)", re.MULTILINE)
BULLET = re.compile(r"^\s*[*+-][ \t]+(.*\S)\s*$")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
FILE_NUMBER = re.compile(r"^(?:adr[-_]?)?(\d+)[-_](.+)\.md$", re.IGNORECASE)
# "ADR001: Title" / "ADR-0001 - Title", as Backstage's ADRs name themselves in front matter.
TITLE_NUMBER = re.compile(r"^ADR[-_ ]?(\d+)\s*[:.\-–]\s*(.+)$", re.IGNORECASE)
# "Architecture Decision Record: X", "Decision record for X": the collection's name, not the title.
TITLE_PREFIX = re.compile(r"^(?:architecture\s+)?decision\s+record\s*(?::|-|–|\bfor\b)\s*", re.IGNORECASE)
EXTERNAL_HREF = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)
# "[Insert Date]", "{YYYY-MM-DD}", "[proposed | accepted]": a template's blank, not a value.
PLACEHOLDER = re.compile(r"^\s*[\[{<].*[\]}>]\s*$")
FRONT_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):(?:[ \t]+(?P<value>.*?))?[ \t]*$")
DATE_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d.%m.%Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y",
    "%A %B %d %Y", "%A %d %B %Y",
)  # fmt: skip
DATE_PREFIX = re.compile(r"^((?:19|20)\d{2})(0[1-9]|1[0-2])([0-2]\d|3[01])$")
ADR_NUMBER = re.compile(r"^(?:adr[-_ ]?)?0*(\d+)$", re.IGNORECASE)
NYGARD_TITLE = re.compile(r"^(\d+)\.\s+(.+)$")
CHOSEN = re.compile(
    r'^Chosen option:?[ \t]*"(?P<option>[^\n]*?)"(?:,?[ \t]*because\b[ \t]*|[ \t]*(?=\n|\Z))(?P<why>.*)\Z',
    re.DOTALL | re.IGNORECASE,
)
META_KEYS = {
    "status": "status", "date": "date", "decision date": "date", "last updated": "date",
    "deciders": "deciders", "decision-makers": "decision-makers", "decision makers": "decision-makers",
    "decision maker": "decision-makers", "decision-maker": "decision-makers", "tags": "tags",
    "consulted": "consulted", "informed": "informed", "technical story": "technical story", "prd": "prd",
}  # fmt: skip
META_LINE = re.compile(r"^\s*(?:[*+-]\s+)?(?P<key>[A-Za-z][A-Za-z -]{1,30}?)\s*:\s*(?P<value>.*?)\s*$")

KNOWN_SECTIONS = {
    "context and problem statement": "context",
    "context": "context",
    "background": "context",
    "problem statement": "context",
    "decision drivers": "drivers",
    "considered options": "options",
    "decision outcome": "outcome",
    "decision": "decision",
    "consequences": "consequences",
    "status": "status",
    "pros and cons of the options": "pros_cons",
    "more information": "more",
    "links": "links",
    "validation": "validation",
    "confirmation": "confirmation",
}
OUTCOME_SUBSECTIONS = {
    "consequences": "consequences",
    "confirmation": "confirmation",
    "positive consequences": "positive",
    "negative consequences": "negative",
}
LINK_WORDS = (
    ("superseded by", "supersedes", True),
    ("superceded by", "supersedes", True),  # adr-tools' spelling
    ("supersedes", "supersedes", False),
    ("supercedes", "supersedes", False),
    ("amended by", "amends", True),
    ("amends", "amends", False),
)


def _strip(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def _split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 3)
    while end != -1 and text[end + 4 : end + 5] not in ("\n", ""):
        end = text.find("\n---", end + 4)
    if end == -1:
        raise MadrError("the YAML front matter is not closed with ---")
    raw, body = text[4:end], text[end + 4 :].lstrip("\n")
    try:
        # The hardened loader: no alias bombs, recursion or duplicate keys from an uploaded file.
        documents = load_documents(raw, max_bytes=MAX_FILE_BYTES, max_aliases=20, max_nodes=5_000)
    except ApplicationError as exc:
        plain = _plain_front_matter(raw)
        if plain is not None:
            return plain, body
        line = exc.extra.get("line")
        reason = exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
        where = f" (line {line + 1})" if isinstance(line, int) else ""
        raise MadrError(f"invalid YAML front matter{where}: {reason}") from None
    if len(documents) > 1:
        raise MadrError("invalid YAML front matter: more than one document")
    data = documents[0] if documents else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MadrError("the YAML front matter must be a mapping of keys to values")
    return {str(k).strip().lower(): v for k, v in data.items()}, body


def _plain_front_matter(raw: str) -> dict[str, Any] | None:
    """Front matter that is not valid YAML only because a value holds ": " unquoted
    (``title: ADR002: Default Software Catalog File Format``, as static-site generators accept):
    flat ``key: text`` lines. None when it is anything more, so real YAML errors are still reported."""
    data: dict[str, Any] = {}
    for line in raw.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = FRONT_LINE.match(line)
        if match is None or match.group("key").lower() in data:
            return None
        value = (match.group("value") or "").strip()
        if value[:1] in ("[", "{", "&", "*", "|", ">", "!", '"', "'", "%", "@", "`"):
            return None
        data[match.group("key").strip().lower()] = value
    return data


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    elif not isinstance(value, list | tuple):
        value = [value]
    out: list[str] = []
    for item in value:
        text = _one_line(str(item))
        if text and text not in out:
            out.append(text)
    return out


def _date(value: Any, notes: list[str]) -> datetime.date | None:
    """A date as people write it (2021-10-15, December 1, 2021, 1 Dec 2021 ...); None, with a
    note, for a template's placeholder or a text that is no date: a date is never invented."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = _one_line(COMMENT.sub("", str(value)))
    if not text:
        return None
    if PLACEHOLDER.match(text):
        notes.append(f'the date "{text[:60]}" is a placeholder; imported without a date')
        return None
    iso = re.match(r"^(\d{4}-\d{2}-\d{2})(?:[T ]|$)", text)
    if iso:
        try:
            return datetime.date.fromisoformat(iso.group(1))
        except ValueError:
            pass
    # "December 1st, 2021" -> "December 1, 2021"
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text, flags=re.IGNORECASE).replace(",", " ")
    cleaned = " ".join(cleaned.split())
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    notes.append(f'the date "{text[:60]}" is not a date that can be read; imported without a date')
    return None


def _status(value: Any, notes: list[str]) -> tuple[str, str, list[LinkRef]]:
    """(category, the status as written when it says more, the "superseded by X" link it may carry).
    A template's placeholder ("[proposed | accepted]") is no status: proposed, with a note."""
    text = _one_line(COMMENT.sub("", str(value)))
    if not text:
        return "proposed", "", []
    if PLACEHOLDER.match(text) and not LINK.fullmatch(text):
        notes.append(f'the status "{text[:60]}" is a placeholder; imported as proposed')
        return "proposed", "", []
    category = status_category(text)
    links = []
    lowered = text.lower()
    if category == "superseded":
        rest = re.sub(r"^\s*(?:superseded|superceded|replaced)\s*(?:by)?\s*:?\s*", "", text, flags=re.IGNORECASE)
        # "superseded by ADR-0004, ADR-0005": one link each; a markdown link is kept whole.
        targets = [rest.strip()] if LINK.search(rest) else re.split(r"\s*(?:,|\band\b)\s*", rest.strip())
        links.extend(LinkRef("supersedes", t, reverse=True) for t in targets if t)
        # "superseded by ADR-0005" is what we write ourselves: the link carries it.
        written = "" if re.match(r"^superseded(\s+by\s+\S.*)?$", lowered) else text[:100]
        return category, written, links
    return category, ("" if lowered == category else text[:100]), links


def _table_meta(lines: list[str]) -> dict[str, str]:
    """A metadata table under the title (``| Created | Status |`` then one row of values)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in lines
        if line.strip().startswith("|") and not re.match(r"^\s*\|[\s|:-]+\|?\s*$", line)
    ]
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        return {}
    keys = {"status": "status", "date": "date", "created": "date", "updated": "date", "deciders": "deciders"}
    return {keys[h.lower()]: v for h, v in zip(rows[0], rows[1], strict=True) if h.lower() in keys and v}


def _blocks(body: str) -> list[tuple[int, str, list[str]]]:
    """Split markdown into (heading level, heading, lines) blocks; level 0 is the preamble.
    Headings inside fenced code blocks are content."""
    blocks: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fenced = False
    for line in body.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            blocks.append((len(match.group(1)), match.group(2), []))
        else:
            blocks[-1][2].append(line)
    return blocks


def _bullets(lines: list[str]) -> list[str]:
    return [m.group(1) for m in (BULLET.match(line) for line in lines) if m]


def _heading_name(heading: str) -> str:
    return COMMENT.sub("", heading).strip().rstrip(":").strip().lower()


def _link_refs(lines: Iterable[str]) -> tuple[list[LinkRef], list[str]]:
    """Links from "Supersedes [2. X](0002-x.md)"-style lines (adr-tools status, MADR 2 Links)."""
    links, rest = [], []
    for line in lines:
        text = BULLET.match(line).group(1) if BULLET.match(line) else line.strip()
        if not text:
            continue
        target = LINK.search(text)
        # A web page (https://...) is a reference to read, not another ADR: it stays text.
        if target is None or EXTERNAL_HREF.match(target.group(2)):
            rest.append(text)
            continue
        lowered = text.lower()
        kind, reverse = "relates", False
        for words, link_kind, is_reverse in LINK_WORDS:
            if lowered.startswith(words):
                kind, reverse = link_kind, is_reverse
                break
        links.append(LinkRef(kind, target.group(0), reverse=reverse))
    return links, rest


def number_and_slug(source: str) -> tuple[int | None, str]:
    name = source.rsplit("/", 1)[-1]
    match = FILE_NUMBER.match(name)
    if not match:
        return None, slugify(name.removesuffix(".md"))[:80]
    prefix, rest = match.group(1), match.group(2)
    slug = slugify(rest)[:80]
    if len(prefix) == 8 and DATE_PREFIX.match(prefix):  # Log4brains: 20210101-title.md
        return None, slug
    return int(prefix), slug


def parse(source: str, text: str) -> ParsedADR:
    """Read one ADR file. Raises :class:`MadrError` with a reason when it is not an ADR we can keep."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    front, body = _split_front_matter(text, source)
    body = COMMENT_LINE.sub("", body)  # the MADR templates' "<!-- This is an optional element -->" lines
    blocks = _blocks(body)
    title_index = next((i for i, (level, _, _) in enumerate(blocks) if level == 1), None)
    front_title = _one_line(str(front.get("title") or "")) if not isinstance(front.get("title"), dict | list) else ""
    if title_index is None and not front_title:
        raise MadrError("no title: the file needs a first-level heading (# Title) or a front matter title")
    number, slug = number_and_slug(source)
    if title_index is None:
        # Docs-site ADRs (Backstage) carry the title in front matter and start with a section.
        blocks.insert(1, (1, front_title, list(blocks[0][2])))
        blocks[0] = (0, "", [])
        title_index = 1
    adr = ParsedADR(source=source, title=_one_line(COMMENT.sub("", blocks[title_index][1])), number=number, slug=slug)
    if not adr.title:
        raise MadrError("no title: the first-level heading is empty")
    prefixed = TITLE_PREFIX.match(adr.title)
    if prefixed and adr.title[prefixed.end() :].strip():
        adr.title = adr.title[prefixed.end() :].strip().removesuffix('"').strip()
    numbered = TITLE_NUMBER.match(adr.title)
    if numbered:
        adr.title = numbered.group(2).strip()
        if adr.number is None:
            adr.number = int(numbered.group(1))
    if number is None:
        name = source.rsplit("/", 1)[-1]
        adr.external_id = name[:-3][:200] if name.lower().endswith(".md") else name[:200]

    # Known sections by name; an unknown heading stays content of the section it sits in.
    sections: dict[str, list[str]] = {}
    outcome_parts: dict[str, list[str]] = {}
    option_blocks: list[tuple[str, list[str]]] = []
    current: list[str] = list(blocks[title_index][2])
    preamble = current
    section_key = ""
    sub_key = ""
    for level, heading, lines in blocks[title_index + 1 :]:
        name = _heading_name(heading)
        if level == 2 and name in KNOWN_SECTIONS:
            section_key, sub_key = KNOWN_SECTIONS[name], ""
            current = sections.setdefault(section_key, [])
        elif level == 3 and section_key == "outcome" and name in OUTCOME_SUBSECTIONS:
            sub_key = OUTCOME_SUBSECTIONS[name]
            current = outcome_parts.setdefault(sub_key, [])
        elif level == 3 and section_key == "pros_cons":
            current = []
            option_blocks.append((_one_line(COMMENT.sub("", heading)), current))
        else:
            current.append(f"{'#' * level} {heading}")
        current.extend(lines)
    preamble_lines = [line for line in blocks[0][2] if line.strip()] + preamble

    nygard = ("status" in sections or "decision" in sections) and "outcome" not in sections
    adr.format = "nygard" if nygard else ("madr4" if front else "madr2")

    # Metadata: front matter (MADR 3/4), else "* Status: x" bullets (MADR 2, Log4brains), "Date: x"
    # lines (Nygard and free-form records) or a | Created | Status | table under the title.
    meta: dict[str, Any] = dict(front)
    leftover: list[str] = []
    table = _table_meta(preamble_lines)
    for key, value in table.items():
        meta.setdefault(key, value)
    for line in COMMENT.sub("", "\n".join(preamble_lines)).split("\n"):
        match = META_LINE.match(line)
        key = META_KEYS.get(match.group("key").strip().lower()) if match else None
        if key:
            meta.setdefault(key, match.group("value"))
        elif line.strip() and not (table and line.strip().startswith("|")):
            leftover.append(line)

    if nygard:
        title = NYGARD_TITLE.match(adr.title)
        if title:
            adr.title = title.group(2).strip()
            if adr.number is None:
                adr.number = int(title.group(1))
            if not adr.slug or adr.slug == slugify(title.group(0)):
                adr.slug = slugify(adr.title)[:80]
        status_lines = COMMENT.sub("", _strip(sections.get("status", []))).split("\n")
        words = [line.strip() for line in status_lines if line.strip()]
        links, rest = _link_refs(words)
        adr.links.extend(links)
        if "status" not in meta:
            plain = [w for w in rest if re.match(r"^[A-Za-z]+\b", w)]
            superseded = next((w for w in words if LINK.search(w) and status_category(w) == "superseded"), None)
            if plain:
                meta["status"] = plain[0]
            elif superseded:
                # "Superceded by [3. X](0003-x.md)": the link is already taken; keep the words.
                adr.status, adr.status_label = "superseded", _one_line(superseded)[:100]
            elif links:
                meta["status"] = "accepted"
    if "status" in meta and meta["status"] not in (None, ""):
        adr.status, adr.status_label, status_links = _status(meta["status"], adr.notes)
        adr.links.extend(status_links)
    elif adr.status_label:
        pass
    else:
        # A record without a status is one that was made: Log4brains reads it as accepted too.
        adr.status = "accepted"
        adr.notes.append("no status given; imported as accepted")
    adr.date = _date(meta["date"], adr.notes) if meta.get("date") not in (None, "") else None
    adr.decision_makers = _names(meta.get("decision-makers", meta.get("deciders", meta.get("decision_makers"))))
    adr.consulted = _names(meta.get("consulted"))
    adr.informed = _names(meta.get("informed"))
    adr.tags = [t for t in (slugify(x) for x in _names(meta.get("tags"))) if t]
    adr.prd_reference = _one_line(str(meta.get("prd") or ""))
    for kind in LINK_KINDS:
        for target in _names(meta.get(kind)):
            adr.links.append(LinkRef(kind, target))
    for target in _names(meta.get("superseded-by")):
        adr.links.append(LinkRef("supersedes", target, reverse=True))

    adr.context = _strip(sections.get("context", []))
    adr.decision_drivers = _names(_bullets(sections.get("drivers", [])))

    # Options: the considered list, completed with pros and cons (matched by title).
    options: dict[str, OptionData] = {}
    for title in _names(_bullets(sections.get("options", []))):
        options.setdefault(title, OptionData(title=title))
    for title, lines in option_blocks:
        if not title:
            continue
        option = options.setdefault(title, OptionData(title=title))
        description: list[str] = []
        for line in lines:
            bullet = BULLET.match(line)
            kind = None
            if bullet:
                for point_kind, prefix in POINT_PREFIX.items():
                    if bullet.group(1).lower().startswith(prefix.lower()):
                        kind = point_kind
                        point = _one_line(bullet.group(1)[len(prefix) :])
                        break
            if kind and point:
                getattr(option, kind).append(point)
            elif not kind:
                description.append(line)
        option.description = (
            COMMENT.sub("", _strip(description)).strip() if adr.format != "madr4" else _strip(description)
        )
    adr.options = list(options.values())

    if nygard:
        adr.justification = _strip(sections.get("decision", []))
        adr.consequences = _strip(sections.get("consequences", []))
    else:
        outcome = _strip(sections.get("outcome", []))
        chosen = CHOSEN.match(outcome)
        if chosen:
            adr.chosen_option = _one_line(chosen.group("option"))
            adr.justification = (chosen.group("why") or "").strip()
        else:
            adr.justification = outcome
        consequences = _strip(outcome_parts.get("consequences", []) + sections.get("consequences", []))
        good = [f"* Good, because {b}" for b in _bullets(outcome_parts.get("positive", []))]
        bad = [f"* Bad, because {b}" for b in _bullets(outcome_parts.get("negative", []))]
        adr.consequences = "\n".join([x for x in (consequences, "\n".join(good + bad)) if x])
    adr.confirmation = _strip(
        outcome_parts.get("confirmation", []) + sections.get("confirmation", []) + sections.get("validation", [])
    )

    more = [_strip(sections.get("more", []))]
    link_lines = sections.get("links", [])
    if link_lines:
        links, rest = _link_refs(link_lines)
        adr.links.extend(links)
        if rest:
            more.append("\n".join(f"* {line}" for line in rest))
    if meta.get("technical story"):
        more.append(f"Technical story: {_one_line(str(meta['technical story']))}")
    if leftover:
        more.append("\n".join(leftover).strip())
    adr.more_information = "\n\n".join(m for m in more if m.strip())
    if adr.format != "madr4":
        for name in ("context", "justification", "consequences", "confirmation", "more_information"):
            setattr(adr, name, COMMENT.sub("", getattr(adr, name)).strip())
    return adr


def skip_reason(name: str) -> str | None:
    """Why a markdown file in an ADR folder is not an ADR (templates, indexes, READMEs), else None."""
    base = name.rsplit("/", 1)[-1].lower()
    if base in INDEX_FILES:
        return "an index or README, not an ADR"
    if "template" in base:
        return "a template, not an ADR"
    return None


def parse_files(
    files: Sequence[tuple[str, str | bytes]],
) -> tuple[list[ParsedADR], dict[str, str], dict[str, str]]:
    """Parse every file; returns the ADRs, the problems and the skipped files by file name
    (nothing raised). Files that are not markdown are left out without a word."""
    parsed: list[ParsedADR] = []
    problems: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, content in sorted(files, key=lambda item: item[0]):
        if not name.lower().endswith(".md"):
            continue
        reason = skip_reason(name)
        if reason is not None:
            skipped[name] = reason
            continue
        if len(content) > MAX_FILE_BYTES:
            problems[name] = f"the file is larger than {MAX_FILE_BYTES // 1024} KB"
            continue
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError:
                problems[name] = "the file is not UTF-8 text"
                continue
        try:
            parsed.append(parse(name, content))
        except MadrError as exc:
            problems[name] = str(exc)
    return parsed, problems, skipped


def link_target_key(target: str) -> tuple[str, str | int]:
    """How to find a link target: ("file", name) for a markdown link or a file name, ("number", n)
    for ADR-0005 / 5; ("bad", text) otherwise."""
    text = target.strip()
    link = LINK.search(text)
    if link:
        href = link.group(2).split("#", 1)[0].rsplit("/", 1)[-1]
        if href.lower().endswith(".md"):
            return "file", href
        text = link.group(1).strip()
    if text.lower().endswith(".md"):
        return "file", text.rsplit("/", 1)[-1]
    match = ADR_NUMBER.match(text.replace(" ", "-") if text.lower().startswith("adr ") else text)
    if match:
        return "number", int(match.group(1))
    nygard = NYGARD_TITLE.match(text)
    if nygard:
        return "number", int(nygard.group(1))
    return "bad", text
