"""Load specialists from Claude Code agent files: YAML front matter + the system prompt as body.

Front matter: ``name`` (required), ``description``, ``tools``, ``color``, and our optional
``areas``, ``hints``, ``focus``, ``model``, ``provider``. Loading is idempotent: a file updates
the specialist of the same slug. A bad file is reported by name with the reason; the rest load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils.text import slugify

from teams_app.inventory.types import ROLES
from teams_app.models import AREAS, Specialist

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
MAX_FILE_BYTES = 256 * 1024
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)


class SpecialistFileError(Exception):
    pass


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def _as_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise SpecialistFileError(f"'{key}' must be a list of words or a comma-separated string")


_WORDS = {"devops": "DevOps", "ui": "UI", "ux": "UX", "api": "API", "db": "DB", "sre": "SRE", "qa": "QA"}


def _title_from_slug(slug: str) -> str:
    return " ".join(_WORDS.get(part, part.capitalize()) for part in slug.replace("_", "-").split("-") if part)


def parse_agent_file(text: str) -> dict[str, Any]:
    """Parse one agent file into Specialist fields; raises SpecialistFileError with the reason."""
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        raise SpecialistFileError("no YAML front matter (the file must start with a '---' block)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise SpecialistFileError(f"front matter is not valid YAML{where}") from exc
    if not isinstance(meta, dict):
        raise SpecialistFileError("front matter must be a mapping of keys to values")
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpecialistFileError("front matter has no 'name'")
    slug = slugify(name.strip())[:80]
    if not slug:
        raise SpecialistFileError(f"'name' {name!r} does not make a usable slug")
    body = match.group(2).strip()
    if not body:
        raise SpecialistFileError("the file has no system prompt after the front matter")
    areas = [a.lower() for a in _as_list(meta.get("areas"), "areas")]
    bad_areas = sorted(set(areas) - set(AREAS))
    if bad_areas:
        raise SpecialistFileError(f"unknown areas {', '.join(bad_areas)} (allowed: {', '.join(AREAS)})")
    focus = [f.lower() for f in _as_list(meta.get("focus"), "focus")]
    bad_focus = sorted(set(focus) - set(ROLES))
    if bad_focus:
        raise SpecialistFileError(f"unknown focus {', '.join(bad_focus)} (allowed: {', '.join(ROLES)})")
    description = meta.get("description") or ""
    if not isinstance(description, str):
        raise SpecialistFileError("'description' must be text")
    tools = meta.get("tools") or ""
    if isinstance(tools, list):
        tools = ", ".join(str(t) for t in tools)
    return {
        "slug": slug,
        "name": str(meta.get("title") or _title_from_slug(slug))[:120],
        "description": description.strip(),
        "areas": areas,
        "hints": [h.lower() for h in _as_list(meta.get("hints"), "hints")],
        "focus": focus,
        "system_prompt": body,
        "tools": str(tools)[:300],
        "color": str(meta.get("color") or "").lower()[:20],
        "model": str(meta.get("model") or "")[:100],
        "provider": str(meta.get("provider") or "")[:20],
    }


def _files_in(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.md")))
        else:
            files.append(path)
    return files


def load_specialists(paths: list[Path] | None = None, *, origin: str | None = None) -> LoadReport:
    """Load every ``*.md`` in the given files/folders (the built-in folder when none)."""
    report = LoadReport()
    builtin = not paths
    for path in _files_in(paths or [BUILTIN_DIR]):
        label = str(path)
        try:
            if not path.exists():
                raise SpecialistFileError("file not found")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SpecialistFileError(f"file is larger than {MAX_FILE_BYTES // 1024} KB")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise SpecialistFileError("file is not UTF-8 text") from exc
            fields = parse_agent_file(text)
        except SpecialistFileError as exc:
            report.errors.append((label, str(exc)))
            continue
        fields["origin"] = origin or (Specialist.Origin.BUILTIN if builtin else Specialist.Origin.IMPORTED)
        fields["source_path"] = label[-500:]
        _upsert(fields, report)
    return report


@transaction.atomic
def _upsert(fields: dict[str, Any], report: LoadReport) -> None:
    slug = fields.pop("slug")
    existing = Specialist.objects.select_for_update().filter(slug=slug).first()
    if existing is None:
        Specialist.objects.create(slug=slug, **fields)
        report.created.append(slug)
        return
    changed = [k for k, v in fields.items() if getattr(existing, k) != v]
    if not changed:
        report.unchanged.append(slug)
        return
    for key in changed:
        setattr(existing, key, fields[key])
    existing.save()
    report.updated.append(slug)
