"""Deterministic agent routing (the hub's ``route_only`` and the follow-up rounds).

Each specialist is scored against the task: the area against its areas, the hints against its
hint keywords, and the words of the summary against its hints, name and description. Ties are
broken by file name, so the same task always routes to the same specialist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

WEIGHT_AREA = 3.0
WEIGHT_HINT_EXACT = 2.0
WEIGHT_SUMMARY_HINT = 1.0
WEIGHT_DESCRIPTION = 0.25

_WORD = re.compile(r"[a-z0-9][a-z0-9+#.-]*")
_STOP = frozenset(
    "a an and are as at be by for from has have in into is it its of on or our the to we with without "
    "this that these those need needs should must can will not no do does during".split()
)


def _words(text: str) -> list[str]:
    return [w.strip(".-") for w in _WORD.findall(text.lower()) if w.strip(".-") and w not in _STOP]


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Candidate:
    slug: str
    name: str
    areas: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    description: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.slug}.md"


@dataclass
class Score:
    candidate: Candidate
    score: float
    matched_area: str = ""
    matched_hints: list[str] = field(default_factory=list)
    matched_summary: list[str] = field(default_factory=list)

    @property
    def rationale(self) -> str:
        parts = []
        if self.matched_area:
            parts.append(f"area '{self.matched_area}'")
        if self.matched_hints:
            parts.append("hints " + ", ".join(f"'{h}'" for h in self.matched_hints))
        if self.matched_summary:
            parts.append("summary terms " + ", ".join(f"'{t}'" for t in self.matched_summary))
        return "matched " + "; ".join(parts) if parts else "no terms matched; chosen by name order"

    def as_dict(self) -> dict:
        return {
            "specialist": self.candidate.file_name,
            "name": self.candidate.name,
            "score": round(self.score, 3),
            "rationale": self.rationale,
            "matched": {"area": self.matched_area, "hints": self.matched_hints, "summary": self.matched_summary},
        }


@lru_cache(maxsize=4096)
def _terms(candidate: Candidate) -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
    """A candidate's hint keywords, their stems and its description's stems, computed once per
    candidate (the hub routes every request against every specialist)."""
    hints = frozenset(h.lower() for h in candidate.hints)
    keyword_stems = {_stem(h.lower()): h.lower() for h in candidate.hints}
    description_stems = frozenset(_stem(w) for w in _words(candidate.description + " " + candidate.name))
    return hints, keyword_stems, description_stems


def _task_terms(hints, summary: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The task's (hint, stem) and (summary word, stem) pairs, deduplicated in order."""
    hint_pairs = [(h, _stem(h)) for h in dict.fromkeys(h.strip().lower() for h in hints if h.strip())]
    word_pairs = [(w, _stem(w)) for w in dict.fromkeys(_words(summary))]
    return hint_pairs, word_pairs


def _score(candidate: Candidate, area: str, hint_pairs: list[tuple[str, str]], word_pairs: list[tuple[str, str]]) -> Score:
    result = Score(candidate=candidate, score=0.0)
    if area and area in candidate.areas:
        result.score += WEIGHT_AREA
        result.matched_area = area
    hint_set, keyword_stems, description_stems = _terms(candidate)
    for hint, stem in hint_pairs:
        if hint in hint_set or stem in keyword_stems:
            result.score += WEIGHT_HINT_EXACT
            result.matched_hints.append(hint)
    for word, stem in word_pairs:
        if stem in keyword_stems:
            result.score += WEIGHT_SUMMARY_HINT
            result.matched_summary.append(word)
        elif stem in description_stems:
            result.score += WEIGHT_DESCRIPTION
            result.matched_summary.append(word)
    return result


def score(candidate: Candidate, *, area: str = "", hints: list[str] | tuple[str, ...] = (), summary: str = "") -> Score:
    return _score(candidate, area, *_task_terms(hints, summary))


def rank(candidates: list[Candidate], *, area: str = "", hints=(), summary: str = "") -> list[Score]:
    hint_pairs, word_pairs = _task_terms(hints, summary)
    scores = [_score(c, area, hint_pairs, word_pairs) for c in candidates]
    return sorted(scores, key=lambda s: (-s.score, s.candidate.file_name))


def route_feedback(*, text: str, candidates: list[dict]) -> list[str]:
    """Specialist slugs a piece of user feedback concerns (follow-up rounds). Falls back to all.

    ``candidates`` are team members as stored on a session: {"specialist", "name", "hints", ...}.
    """
    team = [
        Candidate(slug=m["specialist"], name=m["name"], areas=tuple(m.get("areas") or ()),
                  hints=tuple(m.get("hints") or ()), description=m.get("description", ""))
        for m in candidates
    ]
    ranked = [s for s in rank(team, summary=text) if s.score >= WEIGHT_SUMMARY_HINT]
    if not ranked:
        return [c.slug for c in team]
    best = ranked[0].score
    return [s.candidate.slug for s in ranked if s.score >= best * 0.5]
