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


#: The contract library's core: what profiles, signatures and payloads are. It knows
#: nothing of checks, the plugin, pytest or HTTP clients.
CORE = (
    "_errors",
    "_requirements",
    "_roles",
    "_resources",
    "_schemas",
    "_examples",
    "_profile",
    "_signing",
    "_openapi",
)
ROLE_PACKAGES = ("receiver", "sender", "management")


def _modules(relative: str) -> list[Path]:
    base = ROOT / "conformance" / relative
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


def test_the_core_imports_no_checks_plugin_pytest_or_httpx() -> None:
    """The core modules import nothing above them, and no test or HTTP machinery."""
    banned = ("conformance.checks", "conformance.plugin", "conformance._suite",
              "conformance._engine", "conformance._http", "pytest", "httpx")  # fmt: skip
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m.startswith(banned)
        )
        for name in CORE
        for path in _modules(name)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_role_packages_do_not_import_each_other() -> None:
    """A receiver check never reaches into the sender's package, nor the other way."""
    offenders = {}
    for role in ROLE_PACKAGES:
        others = tuple(f"conformance.checks.{r}" for r in ROLE_PACKAGES if r != role)
        for path in _modules(f"checks/{role}"):
            bad = sorted(m for m in _imported_modules(path) if m.startswith(others))
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_engine_knows_no_role() -> None:
    """The engine (registry, runner, report, config) imports no role's checks."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m.startswith("conformance.checks")
        )
        for path in _modules("_engine")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_role_names_are_defined_once() -> None:
    """Only conformance/_roles.py spells out the tuple of role names."""
    spelled = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "conformance").rglob("*.py")
        if '"receiver", "sender", "management"' in path.read_text(encoding="utf-8")
        or '"sender", "receiver", "management"' in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["conformance/_roles.py"]
