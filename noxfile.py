"""Developer sessions. `nox -l` lists them; `nox -s tests` is what CI runs."""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ["conformance", "reference"]
TESTS = ROOT / "tests"
BENCH = ROOT / "bench"
PYTHON = ["3.11"]

nox.options.sessions = ["tests", "style", "typing", "specs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite on every core (slow tests included; pass `-- -m "not slow"` to
    skip them)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session(python=PYTHON)
def style(session: nox.Session) -> None:
    """Lint and check formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """Type-check the packages with mypy --strict (settings in pyproject.toml)."""
    session.install("-e", ".[test]")
    session.run("mypy", *PACKAGES)


@nox.session(python=PYTHON)
def specs(session: nox.Session) -> None:
    """Validate profiles (meta-schema), the seed examples and the requirements catalogue."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        str(TESTS / "test_profiles.py"),
        str(TESTS / "test_examples.py"),
        str(TESTS / "test_schemas.py"),
        str(TESTS / "test_check_registry.py"),
        *session.posargs,
    )


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the wheel, then install it into a fresh environment and run the CLI from elsewhere."""
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(ROOT / "dist"))
    wheels = sorted((ROOT / "dist").glob("webhook_conformance-*.whl"))
    session.install(str(wheels[-1]))
    with session.chdir(session.create_tmp()):
        session.run("webhook-conformance", "profiles")


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run the receiver-role suite against the reference receiver for every profile."""
    session.install("-e", ".")
    session.run("webhook-conformance", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (ratios against baselines measured in the same run)."""
    session.install("-e", ".[bench]")
    for script in sorted(BENCH.glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
