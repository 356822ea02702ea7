"""Line diffs of two diagram versions for the compare page (SPEC §9).

Both Mermaid and ASCII renderings are deterministic, so a line diff shows only what changed in
the architecture, not rendering noise.
"""

from __future__ import annotations

import difflib

Row = tuple[str, str, str]  # (tag, left line, right line); tag: equal | insert | delete | replace


def unified_diff(a: str, b: str, a_label: str = "before", b_label: str = "after", *, context: int = 3) -> str:
    """A unified diff of ``a`` → ``b``; empty when they are equal."""
    lines = difflib.unified_diff(
        a.splitlines(),
        b.splitlines(),
        fromfile=a_label,
        tofile=b_label,
        n=context,
        lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def side_by_side(a: str, b: str) -> list[Row]:
    """Aligned rows for a two-column view.

    A replaced block pairs lines up as ``replace``; the longer side's surplus lines become
    ``delete`` (left only) or ``insert`` (right only) rows with "" on the other side.
    """
    left, right = a.splitlines(), b.splitlines()
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [("equal", left[i], right[j]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
        elif tag == "delete":
            rows += [("delete", left[i], "") for i in range(i1, i2)]
        elif tag == "insert":
            rows += [("insert", "", right[j]) for j in range(j1, j2)]
        else:
            paired = min(i2 - i1, j2 - j1)
            rows += [("replace", left[i1 + k], right[j1 + k]) for k in range(paired)]
            rows += [("delete", left[i], "") for i in range(i1 + paired, i2)]
            rows += [("insert", "", right[j]) for j in range(j1 + paired, j2)]
    return rows
