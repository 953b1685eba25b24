"""The providers' own JSON examples, as printed in their documents (``spec/examples``).

``spec/examples/manifest.yaml`` names each example's file, profile, source document and what
it validates against: an ``event`` (a whole payload) or a ``schema`` (a management body).
The receiver suite sends the payload examples verbatim, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from conformance._profile import Profile

__all__ = ["DocumentExample", "document_examples"]


@dataclass(frozen=True, kw_only=True)
class DocumentExample:
    file: str
    profile: str
    document: str
    quote: str
    body: bytes
    event: str | None = None
    schema: str | None = None


@cache
def _load(root: Path) -> tuple[DocumentExample, ...]:
    manifest = root / "manifest.yaml"
    if not manifest.is_file():
        return ()
    entries = yaml.safe_load(manifest.read_text(encoding="utf-8"))["examples"]
    return tuple(
        DocumentExample(
            file=e["file"],
            profile=e["profile"],
            document=e["document"],
            quote=e["quote"],
            body=(root / e["file"]).read_bytes(),
            event=e.get("event"),
            schema=e.get("schema"),
        )
        for e in entries
    )


def document_examples(profile: Profile, *, event: str | None = None) -> tuple[DocumentExample, ...]:
    """The profile's examples (only payloads of ``event`` when given). Examples live in
    ``examples/`` beside the profile's ``profiles/`` folder; a profile without one has none."""
    found = _load(profile.path.parent.parent / "examples")
    return tuple(
        e for e in found if e.profile == profile.name and (event is None or e.event == event)
    )
