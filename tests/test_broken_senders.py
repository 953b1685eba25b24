"""The sender suite against the broken senders in ``tests/broken_senders``.

The claims, each a test:

- the corpus's own correct sender passes every sender check under every profile (nothing
  failed, nothing not-strict): the checks raise no false failures against it
  (``test_correct_sender_passes``);
- each defect is caught by its check and by no other, graded by the requirement's level
  (``test_defect_is_caught_by_its_check_alone``);
- every check has a defect that it alone catches
  (``test_every_check_has_a_defect_only_it_catches``);
- so gutting any check lets a defect through: with the check replaced by one that always
  passes, the defect only it catches passes every check
  (``test_gutting_a_check_lets_its_defect_through``, the mutation test);
- a failure reads as it should through pytest itself, as a user runs the suite: the
  requirement, the captured attempts with their arrival times, what was expected, and the
  trigger to replay (``test_a_failure_through_pytest``).

The defects no check catches yet are kept as strict expected failures (``test_gap``): a
check that starts catching one turns it into an unexpected pass.

Every run is played once per test session, all at once (``broken_senders._corpus``), and
each case is judged in this process as the plugin's test judges it; the gutted checks are
judged again on what the runs captured. Under pytest-xdist, the first worker to get here
computes the matrix and the others read it.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broken_senders import DEFECTS, GAPS, SCALES, TRIGGER_PATH, Defect, Gap
from broken_senders._corpus import Matrix, compute

from conformance import list_profiles, load_profile
from conformance._serving import serve_in_thread
from conformance.checks.sender import CHECKS

pytestmark = pytest.mark.slow

#: The defect the end-to-end test runs through pytest (ZTA: its 5 s timeout is the shortest).
THROUGH_PYTEST = next(d for d in DEFECTS if d.name == "one-attempt-too-many")
#: Settings of this run that would change what the suite's own run does.
_CALLER_ENV = ("HYPOTHESIS_STORAGE_DIRECTORY", "PYTEST_ADDOPTS")


def _through_pytest(workdir: Path) -> dict[str, Any]:
    """The suite run as a user runs it, in a subprocess, against ``THROUGH_PYTEST``."""
    profile = load_profile(THROUGH_PYTEST.profile)
    sender = THROUGH_PYTEST.sender(profile)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _CALLER_ENV and not name.startswith("PYTEST_XDIST")
    }
    try:
        with serve_in_thread(sender) as base:
            url = base + TRIGGER_PATH
            command = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--target-url={url}", "--role=sender", f"--profile={profile.name}",
                f"--time-scale={SCALES[profile.name]}",
            ]  # fmt: skip
            if env.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
                command += ["-p", "conformance.plugin"]
            done = subprocess.run(
                command, cwd=workdir, env=env, capture_output=True, text=True, timeout=180
            )
    finally:
        sender.stop()
    return {"url": url, "returncode": done.returncode, "output": done.stdout + done.stderr}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` between the processes of one test session."""
    import fcntl

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """Every run's results, computed once per test session (about half a minute)."""

    def calculate() -> Matrix:
        workdir = tmp_path_factory.mktemp("through-pytest")
        return compute({"through-pytest": lambda: _through_pytest(workdir)})

    if os.environ.get("PYTEST_XDIST_WORKER") is None or sys.platform == "win32":
        return calculate()
    # xdist: the workers share the session's base directory (pytest-N/, with gwN/ in it).
    shared = tmp_path_factory.getbasetemp().parent / "broken-senders-matrix.json"
    with _locked(shared.with_suffix(".lock")):
        if not shared.is_file():
            shared.write_text(calculate().to_json(), encoding="utf-8")
    return Matrix.from_json(shared.read_text(encoding="utf-8"))


def _grade(level: str) -> str:
    return "failed" if level == "MUST" else "not-strict"


@pytest.mark.parametrize("profile_name", list_profiles())
def test_correct_sender_passes(matrix: Matrix, profile_name: str) -> None:
    """The corpus's correct sender fails no case and is graded not-strict in none."""
    run = matrix.run("control", profile_name)
    assert run.violated() == {}, run.describe()
    judged = {r.check for r in run.cases if r.outcome == "passed"}
    assert judged, f"no check ran under {profile_name}"


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_defect_is_caught_by_its_check_alone(matrix: Matrix, defect: Defect) -> None:
    """Under its profile the defect fails its check (the expected cases of it, each graded
    by its requirement's level) and passes every other check."""
    run = matrix.run("defect", defect.name)
    violated = run.violated()
    assert set(violated) == {defect.caught_by}, (
        f"{defect.name} ({defect.what}) under {defect.profile}: expected only "
        f"{defect.caught_by}, got {sorted(violated)}\n" + run.describe()
    )
    if defect.cases is not None:
        assert violated[defect.caught_by] == set(defect.cases), run.describe()
    for record in run.cases:
        if record.check == defect.caught_by and record.outcome != "passed":
            assert record.outcome == _grade(record.level), record.message


def test_every_check_has_a_defect_only_it_catches() -> None:
    """Every registered check is some defect's one catching check
    (``test_defect_is_caught_by_its_check_alone`` proves that it is)."""
    guarded = {defect.caught_by for defect in DEFECTS}
    assert [check.key for check in CHECKS if check.key not in guarded] == []


@pytest.mark.parametrize("key", CHECKS.keys())
def test_gutting_a_check_lets_its_defect_through(matrix: Matrix, key: str) -> None:
    """With the check replaced by one that always passes, some defect that it alone catches
    passes every check: the corpus depends on every check."""
    rejudged = matrix.gutted.get(key, {})
    assert rejudged, f"no defect is caught by {key} alone"
    for name in rejudged:
        assert set(matrix.run("defect", name).violated()) == {key}
    assert any(violated == {} for violated in rejudged.values()), rejudged


def test_a_failure_through_pytest(matrix: Matrix) -> None:
    """``pytest --target-url=... --role=sender`` against a sender that makes one attempt too
    many fails that one requirement, and its message shows the requirement, what was
    expected, every captured attempt with its arrival time, and the trigger to replay."""
    done = matrix.side["through-pytest"]
    output: str = done["output"]
    profile = load_profile(THROUGH_PYTEST.profile)
    limit = profile.delivery.max_attempts
    requirement = f"{profile.name}.{THROUGH_PYTEST.caught_by}"
    assert done["returncode"] == pytest.ExitCode.TESTS_FAILED, output[-4000:]
    assert re.search(r"^1 failed, \d+ passed", output, re.MULTILINE), output[-4000:]
    assert f"FAILED test_sender.py::test_sender[{requirement}]" in output
    assert f"Requirement {requirement} [MUST]:" in output
    assert f"Expected: at most {limit} attempts" in output
    assert "Captured at http://127.0.0.1:" in output
    assert f"{limit + 1} attempt(s)" in output
    for number in range(1, limit + 2):
        arrival = rf"#{number} at \+\d+\.\d{{3}} s \(\d\d:\d\d:\d\d\.\d{{3}}Z\): POST /hook"
        assert re.search(arrival, output), f"attempt #{number} with its arrival\n{output}"
    assert "Reproduce (the trigger; point webhook_url at a capture of your own):" in output
    assert f"curl -sS -i -X POST '{done['url']}'" in output
    assert re.search(r"--data-binary '\{\"webhook_url\": \"http://127\.0\.0\.1:\d+/", output)


@pytest.mark.parametrize(
    "gap",
    [pytest.param(g, marks=pytest.mark.xfail(strict=True, reason=g.why)) for g in GAPS],
    ids=[g.name for g in GAPS],
)
def test_gap(matrix: Matrix, gap: Gap) -> None:
    """A defect that should be caught by one check, but that no check catches yet."""
    run = matrix.run("gap", gap.name)
    assert set(run.violated()) == {gap.should_be_caught_by}, run.describe()


def test_the_corpus_is_well_formed() -> None:
    """Names are unique; every defect's check is registered and judges a requirement of
    its profile; every profile has a time scale; the one-check expectations name cases the
    check has."""
    names = [d.name for d in DEFECTS] + [g.name for g in GAPS]
    assert len(names) == len(set(names))
    assert set(SCALES) == set(list_profiles())
    expectations = [(d.name, d.profile, d.caught_by, d.cases) for d in DEFECTS]
    expectations += [(g.name, g.profile, g.should_be_caught_by, None) for g in GAPS]
    for name, profile_name, key, cases in expectations:
        check = CHECKS.get(key)
        assert check is not None, key
        assert check.key == key, f"{key} is an also-key of {check.key}"
        profile = load_profile(profile_name)
        keys = {r.key for r in profile.requirements if r.role == "sender"}
        assert keys & set(check.keys), f"{profile_name} has no requirement {key} judges"
        if cases is not None:
            assert cases <= set(check.case_names(profile)), name
