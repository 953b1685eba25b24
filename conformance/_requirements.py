"""The requirements catalogue: cross-provider requirements applied to each profile.

``spec/requirements.yaml`` holds requirements written once, keyed by role (``receiver.raw-body``);
a profile sees each as ``<profile>.<key>`` when its ``applies_when`` feature is present. A
profile's own ``requirements:`` add provider-specific ones with full ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator

from conformance._errors import ProfileError
from conformance._resources import schemas_dir, spec_dir
from conformance._roles import Role

__all__ = ["Requirement", "Source", "apply_requirements", "common_requirements"]

Level = Literal["MUST", "SHOULD", "MAY"]


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a requirement comes from: a seed document or a public anchor, and the quote."""

    quote: str
    document: str | None = None
    anchor: str | None = None
    url: str | None = None

    @property
    def origin(self) -> str:
        """The document quoted: a seed document's file name, or a public document's URL (or
        its anchor, where it has none)."""
        return self.document or self.url or self.anchor or "?"

    def __str__(self) -> str:
        where = self.document or self.anchor or "?"
        return f'{where}: "{self.quote}"'


@dataclass(frozen=True, kw_only=True)
class Requirement:
    id: str
    key: str
    level: Level
    role: Role
    text: str
    source: Source
    verification: Literal["check", "inspection"] = "check"
    common: bool = False
    #: The topic of the profile decision that set this level, when the profile changed the
    #: cross-provider level (``levels:``); ``None`` otherwise.
    level_decision: str | None = None

    def __str__(self) -> str:
        return f"{self.id} [{self.level}] {self.text}"


@cache
def _catalogue() -> Mapping[str, Any]:
    path = spec_dir() / "requirements.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    meta = json.loads((schemas_dir() / "requirements.schema.json").read_text(encoding="utf-8"))
    error = next(iter(Draft202012Validator(meta).iter_errors(raw)), None)
    if error is not None:  # pragma: no cover - guarded by the specs test
        where = "/".join(str(p) for p in error.absolute_path)
        raise ProfileError(f"{path} is invalid at {where}: {error.message}")
    keys = [r["key"] for r in raw["requirements"]]
    if len(keys) != len(set(keys)):  # pragma: no cover - guarded by the specs test
        raise ProfileError(f"{path} repeats a requirement key")
    return dict(raw)


def _source(raw: Mapping[str, Any]) -> Source:
    anchors: Mapping[str, str] = _catalogue()["anchors"]
    anchor = raw.get("anchor")
    return Source(
        quote=raw["quote"],
        document=raw.get("document"),
        anchor=anchor,
        url=anchors.get(anchor) if anchor else None,
    )


def common_requirements() -> tuple[Mapping[str, Any], ...]:
    """The cross-provider entries of ``spec/requirements.yaml`` as written."""
    return tuple(_catalogue()["requirements"])


def apply_requirements(
    profile: str,
    features: frozenset[str],
    own: Iterable[Mapping[str, Any]],
    levels: Iterable[Mapping[str, Any]] = (),
) -> tuple[Requirement, ...]:
    """The full catalogue one profile sees: applicable common requirements, at the level the
    profile's ``levels:`` sets where it sets one, then its own."""
    result: list[Requirement] = []
    changed = {raw["key"]: raw for raw in levels}
    applied: set[str] = set()
    for raw in common_requirements():
        when = raw.get("applies_when")
        if when is not None and when not in features:
            continue
        change = changed.get(raw["key"])
        applied.add(raw["key"])
        result.append(
            Requirement(
                id=f"{profile}.{raw['key']}",
                key=raw["key"],
                level=change["level"] if change else raw["level"],
                level_decision=change["decision"] if change else None,
                role=raw["role"],
                text=raw["text"],
                source=_source(raw["source"]),
                verification=raw.get("verification", "check"),
                common=True,
            )
        )
    unknown = sorted(set(changed) - applied)
    if unknown:
        raise ProfileError(
            f"profile {profile!r} sets levels: for {', '.join(unknown)}, which are not "
            "cross-provider requirements that apply to it"
        )
    for raw in own:
        rid: str = raw["id"]
        if not rid.startswith(f"{profile}."):
            raise ProfileError(
                f"requirement {rid!r} of profile {profile!r} must start with '{profile}.'"
            )
        result.append(
            Requirement(
                id=rid,
                key=rid.removeprefix(f"{profile}."),
                level=raw["level"],
                role=raw["role"],
                text=raw["text"],
                source=_source(raw["source"]),
                verification=raw.get("verification", "check"),
            )
        )
    ids = [r.id for r in result]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ProfileError(f"profile {profile!r} repeats requirement ids: {', '.join(duplicates)}")
    return tuple(result)
