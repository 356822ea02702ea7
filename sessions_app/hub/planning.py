"""PRDs from Task Master AI's local planning files, read the way Task Master lays them out.

A Task Master project keeps its planning artifacts under ``.taskmaster/``:

- ``docs/``: the PRDs, plain text or markdown (``prd.txt`` by default; more PRDs beside it, e.g.
  ``photo-feature-prd.txt``), parsed into tasks by ``task-master parse-prd``;
- ``tasks/tasks.json``: the tasks, tagged (``{"master": {"tasks": [...], "metadata": {...}}}``) or,
  before tags existed, ``{"tasks": [...]}``;
- ``state.json``: ``currentTag``, the tag in use.

Older projects have ``scripts/prd.txt`` and ``tasks/tasks.json`` at the top level instead. Given a
folder (the project root, or its ``.taskmaster`` folder), :func:`read_planning_folder` returns one
:class:`PlannedPRD` per document, oldest first by modification time, so the newest is last. No
Django here: the hub's services store them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DOC_SUFFIXES = (".txt", ".md", ".markdown")
MAX_BYTES = 1_000_000
REFERENCE_MAX = 40  # teams_app.models.PRD_REFERENCE: PRD-<1..41 characters>
EXPLICIT_ID = re.compile(r"\bPRD-[A-Za-z0-9][A-Za-z0-9._-]{0,40}\b")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$|^\s*<PRD>\s*$", re.M)

NOT_A_FOLDER = "{path} is not a folder."
NO_PLANNING = "No Task Master planning files in {path}: expected .taskmaster/docs/ (or scripts/prd.txt)."


class PlanningError(ValueError):
    pass


@dataclass(frozen=True)
class TaskSummary:
    tag: str
    total: int
    done: int
    current: bool

    def line(self) -> str:
        mark = " (current tag)" if self.current else ""
        return f"tag {self.tag}{mark}: {self.total} tasks, {self.done} done"


@dataclass(frozen=True)
class PlannedPRD:
    reference: str
    title: str
    body: str
    source: str  # "Task Master: .taskmaster/docs/prd.txt"
    modified: float


def _root(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise PlanningError(NOT_A_FOLDER.format(path=path))
    if path.name == ".taskmaster":
        return path.parent
    return path


def _doc_files(root: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    docs = root / ".taskmaster" / "docs"
    if docs.is_dir():
        for file in sorted(docs.iterdir()):
            if file.is_file() and file.suffix.lower() in DOC_SUFFIXES and not file.name.startswith("."):
                found.append((file, f".taskmaster/docs/{file.name}"))
    legacy = root / "scripts" / "prd.txt"
    if not found and legacy.is_file():
        found.append((legacy, "scripts/prd.txt"))
    return found


def _slug(stem: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", stem.lower()) if w and w not in ("prd", "product", "requirements")]
    return "-".join(words)


def _reference(stem: str, text: str, taken: set[str]) -> str:
    explicit = EXPLICIT_ID.search(text[:2000])
    if explicit and explicit.group(0) not in taken:
        return explicit.group(0)[: REFERENCE_MAX + 4]
    base = "PRD-" + (_slug(stem) or "taskmaster")
    base = base[: REFERENCE_MAX + 4].rstrip("-._")
    reference, n = base, 2
    while reference in taken:
        reference = f"{base[: REFERENCE_MAX + 4 - len(str(n)) - 1]}-{n}"
        n += 1
    return reference


def _title(text: str, fallback: str) -> str:
    for m in HEADING.finditer(text):
        if m.group("title"):
            return m.group("title").strip()[:200]
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("<")), "")
    return (first or fallback)[:200]


def read_task_summaries(root: Path) -> list[TaskSummary]:
    """Tags of ``tasks.json`` with their task counts; nothing when the file is missing or unreadable."""
    for candidate in (root / ".taskmaster" / "tasks" / "tasks.json", root / "tasks" / "tasks.json"):
        if candidate.is_file():
            break
    else:
        return []
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    current = "master"
    state = root / ".taskmaster" / "state.json"
    if state.is_file():
        try:
            current = str(json.loads(state.read_text(encoding="utf-8")).get("currentTag") or "master")
        except (OSError, ValueError, AttributeError):
            pass
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):  # the format before tags
        data = {"master": {"tasks": data["tasks"]}}
    out = []
    for tag, value in (data.items() if isinstance(data, dict) else []):
        tasks = value.get("tasks") if isinstance(value, dict) else None
        if not isinstance(tasks, list):
            continue
        done = sum(1 for t in tasks if isinstance(t, dict) and t.get("status") == "done")
        out.append(TaskSummary(tag=str(tag), total=len(tasks), done=done, current=str(tag) == current))
    return out


def read_planning_folder(path: str | Path) -> tuple[list[PlannedPRD], list[TaskSummary]]:
    """The folder's PRDs (oldest first) and its task tags. Raises PlanningError."""
    root = _root(Path(path))
    files = _doc_files(root)
    if not files:
        raise PlanningError(NO_PLANNING.format(path=root))
    summaries = read_task_summaries(root)
    footer = ""
    if summaries:
        footer = "\n\n---\nTask Master tasks: " + "; ".join(s.line() for s in summaries) + "."
    planned: list[PlannedPRD] = []
    taken: set[str] = set()
    for file, relative in sorted(files, key=lambda f: (f[0].stat().st_mtime, f[1])):
        raw = file.read_bytes()[:MAX_BYTES]
        text = raw.decode("utf-8", errors="replace").replace("\x00", "")
        reference = _reference(file.stem, text, taken)
        taken.add(reference)
        planned.append(PlannedPRD(
            reference=reference, title=_title(text, file.stem), body=text.rstrip() + footer,
            source=f"Task Master: {relative}", modified=file.stat().st_mtime,
        ))
    return planned, summaries
