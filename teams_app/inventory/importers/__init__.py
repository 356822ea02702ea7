"""Inventory importers: docker-compose, Kubernetes manifests and Backstage catalogs.

``import_text(text, fmt)`` is the single entry point: it parses the YAML safely, picks the
importer (or detects it), and returns a validated, inferred ``ParsedInventory``. Any problem is an
``ApplicationError`` and nothing is returned, so callers can store all or nothing.
"""

from __future__ import annotations

from teams_app.errors import ApplicationError
from teams_app.inventory.importers.backstage import BackstageImporter
from teams_app.inventory.importers.base import Importer
from teams_app.inventory.importers.compose import ComposeImporter
from teams_app.inventory.importers.k8s import KubernetesImporter
from teams_app.inventory.safe_yaml import load_documents
from teams_app.inventory.types import ParsedInventory

# Choices for a form: value -> label. "auto" detects the format from the content.
FORMATS: dict[str, str] = {
    "auto": "Detect automatically",
    "compose": "Docker Compose",
    "k8s": "Kubernetes manifests",
    "backstage": "Backstage catalog",
}

# Detection order matters: Backstage entities also carry apiVersion/kind, and the Kubernetes
# importer declines them only by their backstage.io apiVersion.
IMPORTERS: dict[str, Importer] = {
    "backstage": BackstageImporter(),
    "k8s": KubernetesImporter(),
    "compose": ComposeImporter(),
}


def detect_format(docs: list[object]) -> str | None:
    for fmt, importer in IMPORTERS.items():
        if importer.detect(docs):
            return fmt
    return None


def import_text(text: str, fmt: str = "auto") -> ParsedInventory:
    """Parse an inventory file. ``fmt`` is one of ``FORMATS``; ``auto`` detects it."""
    if fmt not in FORMATS:
        raise ApplicationError(
            f"Unknown inventory format {fmt!r}; expected one of {', '.join(FORMATS)}.", {"format": fmt}
        )
    docs = load_documents(text)
    if not docs:
        raise ApplicationError("The file is empty: it contains no YAML documents.")
    if fmt == "auto":
        detected = detect_format(docs)
        if detected is None:
            raise ApplicationError(
                "Could not detect the format. Expected a docker-compose file (top-level 'services'), "
                "Kubernetes manifests (apiVersion and kind, e.g. Deployment) or a Backstage catalog "
                "(apiVersion backstage.io/v1alpha1)."
            )
        fmt = detected
    importer = IMPORTERS[fmt]
    if not importer.detect(docs):
        raise ApplicationError(f"The file does not look like {FORMATS[fmt]}.", {"format": fmt})
    return importer.parse(docs)


__all__ = ["FORMATS", "IMPORTERS", "Importer", "detect_format", "import_text"]
