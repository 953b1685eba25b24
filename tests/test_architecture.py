"""The layering rules of the design, and the public surface of each package."""

from __future__ import annotations

import ast
from pathlib import Path

import conformance

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_conformance_never_imports_reference() -> None:
    """No module of the contract library or the suite imports the reference implementation."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "reference"
        )
        for path in (ROOT / "conformance").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_conformance_public_api() -> None:
    """The contract library exports exactly its documented names ; changing them changes the API."""
    assert sorted(conformance.__all__) == sorted(
        [
            "ConformanceError",
            "Event",
            "FutureTimestamp",
            "InvalidSecret",
            "MalformedSignature",
            "MalformedTimestamp",
            "MissingHeader",
            "PayloadError",
            "Profile",
            "ProfileError",
            "Requirement",
            "SignatureMismatch",
            "Source",
            "StaleTimestamp",
            "TimestampOutOfTolerance",
            "UnknownEventType",
            "Verification",
            "VerificationError",
            "Verifier",
            "__version__",
            "delivery_headers",
            "iter_payload_errors",
            "list_profiles",
            "load_profile",
            "payload_schema",
            "sign",
            "validate_payload",
            "verify",
        ]
    )
    for name in conformance.__all__:
        assert hasattr(conformance, name), name


def test_every_library_error_derives_from_the_base() -> None:
    """Every exception class the library defines is a ConformanceError."""
    import conformance._errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, conformance.ConformanceError) for c in classes)
    assert issubclass(conformance.InvalidSecret, conformance.ConformanceError)


def test_typed_markers_ship() -> None:
    """Both packages ship py.typed so downstream type checkers use their annotations."""
    assert (ROOT / "conformance" / "py.typed").is_file()
    assert (ROOT / "reference" / "py.typed").is_file()
