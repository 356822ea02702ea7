"""The MADR markdown format: render a decision as a MADR 4 file ``NNNN-slug.md`` and parse MADR 4,
MADR 2/3 (Log4brains) and adr-tools (Nygard) files back into plain data.

Pure functions, no database: :mod:`sessions_app.decisions.services` turns parsed files into rows and
:mod:`sessions_app.decisions.selectors` feeds the renderer. ``render(parse(render(d)))`` is
``render(d)`` byte for byte; the tests hold that.
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
IGNORED_FILES = frozenset({"readme.md", "index.md", "template.md", "adr-template.md", "_template.md"})

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
    date: datetime.date
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

    @property
    def file_name(self) -> str:
        return file_name(self.number, self.slug)


def adr_ref(number: int) -> str:
    return f"ADR-{number:04d}"


def file_name(number: int, slug: str) -> str:
    return f"{number:04d}-{slug}.md"


# -- export --------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _front_matter(d: ExportDecision) -> str:
    data: dict[str, Any] = {"status": d.status, "date": d.date}
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


def export_zip(decisions: Iterable[ExportDecision], *, folder: str = "decisions") -> bytes:
    """A zip of ``folder/NNNN-slug.md`` files; stable bytes for the same decisions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for d in decisions:
            info = zipfile.ZipInfo(
                f"{folder}/{d.file_name}", date_time=(d.date.year, d.date.month, d.date.day, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, render(d).encode("utf-8"))
    return buffer.getvalue()


# -- import --------------------------------------------------------------------------------------

HEADING = re.compile(r"^(#{1,3})[ \t]+(.+?)[ \t]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
COMMENT_LINE = re.compile(r"^[ \t]*<!--[^\n]*?-->[ \t]*(?:\n|\Z)", re.MULTILINE)
BULLET = re.compile(r"^\s*[*+-][ \t]+(.*\S)\s*$")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
FILE_NUMBER = re.compile(r"^(\d+)-(.+)\.md$", re.IGNORECASE)
DATE_PREFIX = re.compile(r"^((?:19|20)\d{2})(0[1-9]|1[0-2])([0-2]\d|3[01])$")
ADR_NUMBER = re.compile(r"^(?:adr[-_ ]?)?0*(\d+)$", re.IGNORECASE)
NYGARD_TITLE = re.compile(r"^(\d+)\.\s+(.+)$")
CHOSEN = re.compile(
    r'^Chosen option:?[ \t]*"(?P<option>[^\n]*?)"(?:,?[ \t]*because\b[ \t]*|[ \t]*(?=\n|\Z))(?P<why>.*)\Z',
    re.DOTALL | re.IGNORECASE,
)
META_LINE = re.compile(r"^\s*(?:[*+-]\s+)?(?P<key>[A-Za-z][A-Za-z -]{1,30}?)\s*:\s*(?P<value>.*?)\s*$")

KNOWN_SECTIONS = {
    "context and problem statement": "context",
    "context": "context",
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
    ("supersedes", "supersedes", False),
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


def _date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value).strip()
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        raise MadrError(f'the date "{text}" is not a YYYY-MM-DD date') from None


def _status(value: Any) -> tuple[str, list[LinkRef]]:
    """A status word, and the "superseded by X" link it may carry."""
    text = COMMENT.sub("", str(value)).strip()
    words = re.findall(r"[a-z]+", text.lower())
    if not words or words[0] not in STATUSES:
        raise MadrError(f'unknown status "{_one_line(text)[:60]}" (use one of {", ".join(STATUSES)})')
    links = []
    if words[0] == "superseded":
        rest = re.sub(r"^\s*superseded\s*(by)?\s*", "", text, flags=re.IGNORECASE).strip()
        if rest:
            links.append(LinkRef("supersedes", rest, reverse=True))
    return words[0], links


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
        if target is None:
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
    if title_index is None:
        raise MadrError("no title: the file needs a first-level heading (# Title)")
    number, slug = number_and_slug(source)
    adr = ParsedADR(source=source, title=_one_line(COMMENT.sub("", blocks[title_index][1])), number=number, slug=slug)
    if not adr.title:
        raise MadrError("no title: the first-level heading is empty")

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

    # Metadata: front matter (MADR 3/4), else "* Status: x" bullets (MADR 2, Log4brains) or "Date: x" (Nygard).
    meta: dict[str, Any] = dict(front)
    leftover: list[str] = []
    for line in COMMENT.sub("", "\n".join(preamble_lines)).split("\n"):
        match = META_LINE.match(line)
        key = match.group("key").strip().lower() if match else ""
        if match and key in (
            "status",
            "date",
            "deciders",
            "decision-makers",
            "decision makers",
            "tags",
            "consulted",
            "informed",
            "technical story",
            "prd",
        ):
            meta.setdefault(key.replace(" ", "-") if key != "technical story" else key, match.group("value"))
        elif line.strip():
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
            if plain:
                meta["status"] = plain[0]
            elif any(link.kind == "supersedes" and link.reverse for link in links):
                meta["status"] = "superseded"
            elif links:
                meta["status"] = "accepted"
    if "status" in meta and meta["status"] not in (None, ""):
        adr.status, status_links = _status(meta["status"])
        adr.links.extend(status_links)
    elif nygard:
        raise MadrError("no status: the ## Status section is empty")
    adr.date = _date(meta["date"]) if meta.get("date") not in (None, "") else None
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


def parse_files(files: Sequence[tuple[str, str | bytes]]) -> tuple[list[ParsedADR], dict[str, str]]:
    """Parse every file; returns the ADRs and the problems by file name (nothing raised)."""
    parsed: list[ParsedADR] = []
    problems: dict[str, str] = {}
    for name, content in sorted(files, key=lambda item: item[0]):
        base = name.rsplit("/", 1)[-1]
        if base.lower() in IGNORED_FILES or not base.lower().endswith(".md"):
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
    return parsed, problems


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
