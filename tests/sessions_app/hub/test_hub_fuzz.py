"""Schema-based fuzzing of the hub: bodies derived from the task object's pydantic schema (valid
values, values of the wrong kind, missing and unknown fields) and arbitrary JSON never get a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sessions_app.hub.schemas import TASK_ID_PATTERN, TaskIn
from teams_app.models import AREAS
from tests.sessions_app.hub.conftest import Api

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=60),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=12,
)

# Per field of the schema: values that satisfy it, and values on or beyond its edges.
_text = st.text(min_size=1, max_size=50).filter(str.strip)
VALID = {
    "task_id": st.from_regex(TASK_ID_PATTERN, fullmatch=True),
    "area": st.sampled_from(AREAS),
    "summary": st.text(min_size=1, max_size=500).filter(str.strip),
    "hints": st.lists(_text, max_size=20),
    "prd": st.sampled_from(["PRD-7", "PRD-x.y_z", "https://docs.example.com/prd/1", "PRD-7"]),
}
EDGES = {
    "task_id": st.text(max_size=140) | st.sampled_from(["", "-x", "a b", "x" * 129, "a\x00", "a\ud800"]),
    "area": st.text(max_size=12),
    "summary": st.sampled_from(["", "  ", "s" * 501, "nul \x00 byte", "lone \ud800 surrogate"]),
    "hints": st.lists(st.text(max_size=55) | st.sampled_from(["\x00", "\udfff"]), min_size=0, max_size=23),
    "prd": st.sampled_from(["", "   ", None, "PRD-", "ftp://x", "JIRA-1", "https://x/\x00", "https://x/\ud800"])
    | st.text(max_size=30),
}
assert set(VALID) == set(EDGES) == set(TaskIn.model_fields)


@st.composite
def task_bodies(draw):
    body = {}
    for name in VALID:
        choice = draw(st.sampled_from(["valid"] * 6 + ["edge", "any", "missing"]))
        if choice == "valid":
            body[name] = draw(VALID[name])
        elif choice == "edge":
            body[name] = draw(EDGES[name])
        elif choice == "any":
            body[name] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return body


bodies = st.fixed_dictionaries(VALID) | task_bodies() | json_values
FUZZ = settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(body=bodies)
def test_route_only_never_answers_5xx(api: Api, body):
    response = api.post("/hub/route_only", body)
    event(f"status {response.status_code}")
    assert response.status_code < 500, (body, response.content)
    assert response.status_code in (200, 400, 422)
    json.loads(response.content)


@FUZZ
@given(body=bodies)
def test_run_task_never_answers_5xx(api: Api, body):
    response = api.post("/hub/run_task", body)
    event(f"status {response.status_code}")
    assert response.status_code < 500, (body, response.content)
    assert response.status_code in (200, 202, 400, 409, 422)
    json.loads(response.content)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), path=st.sampled_from(["/hub/route_only", "/hub/run_task"]))
def test_raw_bytes_never_answer_5xx(api: Api, raw, path):
    response = api.post(path, raw=raw)
    assert response.status_code < 500, (raw, response.content)
