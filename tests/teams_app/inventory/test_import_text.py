"""import_text: format choice, auto-detection, and errors before any importer runs."""

from __future__ import annotations

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import FORMATS, detect_format, import_text

COMPOSE = "services:\n  web: {image: nginx:1.27}\n"
K8S = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
    "spec: {template: {spec: {containers: [{name: w, image: nginx:1.27}]}}}\n"
)
BACKSTAGE = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\nspec: {type: website}\n"


def test_formats_lists_auto_and_every_importer() -> None:
    assert list(FORMATS) == ["auto", "compose", "k8s", "backstage"]


@pytest.mark.parametrize(("text", "fmt"), [(COMPOSE, "compose"), (K8S, "k8s"), (BACKSTAGE, "backstage")])
def test_auto_detects_each_format(text: str, fmt: str) -> None:
    inv = import_text(text)
    assert inv.format == fmt
    assert [s.name for s in inv.services] == ["web"]
    assert import_text(text, fmt).format == fmt


def test_kubernetes_list_is_detected() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join("  " + line + "\n" for line in ("- " + K8S.replace("\n", "\n  ")).splitlines())
    assert detect_format([{"apiVersion": "v1", "kind": "List", "items": []}]) == "k8s"
    assert import_text(text).format == "k8s"


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="Unknown inventory format 'helm'"):
        import_text(COMPOSE, "helm")


def test_undetectable_content_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="Could not detect the format"):
        import_text("just: a mapping\n")
    with pytest.raises(ApplicationError, match="Could not detect the format"):
        import_text("- a\n- list\n")


def test_explicit_format_that_does_not_match_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="does not look like Kubernetes manifests"):
        import_text(COMPOSE, "k8s")
    with pytest.raises(ApplicationError, match="does not look like Docker Compose"):
        import_text(BACKSTAGE, "compose")


def test_empty_file_is_an_error() -> None:
    with pytest.raises(ApplicationError, match="empty"):
        import_text("# nothing here\n---\n")


def test_invalid_yaml_is_reported_with_its_line() -> None:
    with pytest.raises(ApplicationError, match=r"Invalid YAML in document 1, line 3: mapping values are not allowed"):
        import_text("services:\n  web:\n    image: nginx: 1.27\n")


def test_oversize_file_is_refused() -> None:
    with pytest.raises(ApplicationError, match="too large"):
        import_text("services:\n" + "#" * 1_000_001)
