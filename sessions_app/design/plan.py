"""The implementation plan (Phase 4): the specialists' tasks merged, ordered by their
dependencies, numbered, with the USER's review tasks from the catalogue."""

from __future__ import annotations

from sessions_app.design.catalogue import Draft
from sessions_app.design.schema import PlanItem


def plan_merge(items: list[PlanItem], drafts: list[Draft]) -> list[PlanItem]:
    """One plan: items deduplicated by key (first proposer wins), the drafts' USER tasks added,
    topologically ordered (a task after everything it depends on; ties keep proposal order),
    numbered from 1 with ``depends_on`` as those numbers."""
    by_key: dict[str, PlanItem] = {}
    order: list[str] = []
    for i, item in enumerate(items):
        key = item.key or f"item:{i}:{item.specialist}:{item.task[:40]}"
        if key not in by_key:
            by_key[key] = item.model_copy(update={"key": key})
            order.append(key)
    for d in drafts:
        for t in d.tasks:
            if t.role == "user" and t.key not in by_key and any(a in by_key for a in t.after):
                by_key[t.key] = PlanItem(specialist="user", service=t.service, task=t.task, acceptance=t.acceptance,
                                         key=t.key, depends_on_keys=list(t.after))
                order.append(t.key)
    placed: list[str] = []
    remaining = list(order)
    while remaining:
        progressed = False
        for key in list(remaining):
            deps = [k for k in by_key[key].depends_on_keys if k in by_key]
            if all(k in placed for k in deps):
                placed.append(key)
                remaining.remove(key)
                progressed = True
                break
        if not progressed:  # a cycle: keep proposal order for the rest
            placed.extend(remaining)
            break
    number = {key: i for i, key in enumerate(placed, start=1)}
    return [
        by_key[key].model_copy(update={
            "order": number[key],
            "depends_on": sorted(number[k] for k in by_key[key].depends_on_keys if k in number and number[k] < number[key]),
        })
        for key in placed
    ]


def plan_stored_items(plan: list[dict]) -> list[PlanItem]:
    """A recorded plan as items to merge again (:func:`plan_merge`): each keeps its key (or
    gets one from its number) and its dependencies, as the keys of the items they number (the
    record keeps the numbers only)."""
    items = [PlanItem.model_validate({**p, "key": p.get("key") or f"plan:{p['order']}"}) for p in plan]
    key_of = {item.order: item.key for item in items}
    return [item.model_copy(update={"depends_on_keys": [key_of[n] for n in item.depends_on if n in key_of]}) for item in items]


def plan_owners(plan: list[PlanItem]) -> list[str]:
    return sorted({p.specialist for p in plan if p.specialist and p.specialist != "user"})
