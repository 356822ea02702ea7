"""Safe YAML loading: limits, hostile documents and readable syntax errors."""

from __future__ import annotations

import time

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.safe_yaml import load_documents


def test_loads_every_document_and_skips_empty_ones() -> None:
    docs = load_documents("a: 1\n---\n---\n# only a comment\n---\nb: [x, y]\n")
    assert docs == [{"a": 1}, {"b": ["x", "y"]}]


def test_merge_keys_and_small_anchors_still_work() -> None:
    docs = load_documents("x: &base {restart: always}\ny:\n  <<: *base\n  image: nginx\n")
    assert docs[0]["y"] == {"restart": "always", "image": "nginx"}


def test_port_mapping_is_not_read_as_a_base_60_number() -> None:
    # YAML 1.1 reads 22:22 as 1342; Compose (YAML 1.2) keeps the string.
    assert load_documents("ports: [22:22, 8080, 1.5]\n") == [{"ports": ["22:22", 8080, 1.5]}]


def test_syntax_error_names_document_and_line() -> None:
    text = "a: 1\n---\nservices:\n  web:\n    image: [nginx\n    ports: 1\n"
    with pytest.raises(ApplicationError) as exc:
        load_documents(text)
    message = str(exc.value)
    assert message.startswith("Invalid YAML in document 2, line ")
    assert exc.value.extra["document"] == 2
    assert exc.value.extra["line"] >= 5


def test_size_is_checked_before_parsing() -> None:
    text = "a: [" + "x" * 2000  # also invalid YAML: the size error must win
    with pytest.raises(ApplicationError, match="too large"):
        load_documents(text, max_bytes=1000)


def test_size_counts_utf8_bytes() -> None:
    with pytest.raises(ApplicationError, match="too large"):
        load_documents("a: " + "é" * 600, max_bytes=1000)


def test_billion_laughs_fails_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    with pytest.raises(ApplicationError, match="alias bomb"):
        load_documents("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0


def test_too_many_aliases_are_refused() -> None:
    text = "x: &x 1\nitems:\n" + "".join("  - *x\n" for _ in range(101))
    with pytest.raises(ApplicationError, match="too many aliases"):
        load_documents(text)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ApplicationError, match="recursive alias"):
        load_documents("a: &a [1, *a]\n")


def test_node_limit_applies_to_plain_documents() -> None:
    with pytest.raises(ApplicationError, match="more than 50 nodes"):
        load_documents("items: [" + ", ".join(str(i) for i in range(100)) + "]\n", max_nodes=50)


def test_deep_nesting_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(ApplicationError, match="nesting"):
        load_documents("[" * 20000 + "]" * 20000)
    assert time.perf_counter() - started < 1.0


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(ApplicationError, match=r"line 4: duplicate key 'web'"):
        load_documents("services:\n  web: {image: a}\n  db: {image: b}\n  web: {image: c}\n")


def test_python_tags_are_refused() -> None:
    with pytest.raises(ApplicationError, match="Invalid YAML in document 1, line 1"):
        load_documents("x: !!python/object/apply:os.system ['true']\n")


def test_non_text_is_refused() -> None:
    with pytest.raises(ApplicationError):
        load_documents(b"a: 1")  # type: ignore[arg-type]
