"""Without --target-url the plugin is inert in a foreign project: the ``pytest11`` entry point
loads it into every pytest run on the machine, and such a run must end exactly as it does with
``-p no:webhook_conformance`` (exit code, terminal output, JUnit XML, ``--markers``,
``--fixtures``), writing nothing but the JUnit file asked for.

The runs are real subprocesses (``python -m pytest`` with ``cwd`` in the foreign project), so
the installed entry point is what gets loaded; they run concurrently to keep the module fast.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conformance.plugin import NOT_STRICT_PROPERTY

PLUGIN = "webhook_conformance"

if not any(ep.name == PLUGIN for ep in entry_points(group="pytest11")):
    pytest.skip(
        f"the {PLUGIN} pytest11 entry point is not installed (pip install -e .)",
        allow_module_level=True,
    )

HAS_XDIST = importlib.util.find_spec("xdist") is not None

#: A project that knows nothing of webhook-conformance, with one test of every outcome and
#: the names the plugin uses: fixtures called ``receiver_case``/``sender_case``, a test asking
#: for an undefined ``management_case`` (its error lists every fixture in the run), the user
#: property the plugin turns into NOT-STRICT, and an unregistered ``slow`` marker under
#: ``--strict-markers``.
PROJECT = {
    "pytest.ini": """\
[pytest]
addopts = --strict-markers
""",
    "conftest.py": """\
import pytest


@pytest.fixture
def receiver_case():
    return "foreign"


@pytest.fixture(params=["a", "b"])
def sender_case(request):
    return request.param


@pytest.fixture
def broken():
    raise RuntimeError("this fixture fails in setup")
""",
    "test_import_error.py": """\
import module_that_does_not_exist_anywhere  # noqa: F401


def test_never_collected():
    pass
""",
    "test_marked.py": """\
import pytest


@pytest.mark.slow
def test_slow():
    pass
""",
    "test_outcomes.py": f"""\
import pytest


def test_passes():
    pass


def test_fails():
    assert 1 + 1 == 3


@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfails():
    assert False


def test_setup_error(broken):
    pass


def test_own_receiver_case(receiver_case):
    assert receiver_case == "foreign"


def test_own_sender_case(sender_case):
    assert sender_case in ("a", "b")


def test_undefined_management_case(management_case):
    pass


def test_property(request):
    request.node.user_properties.append(({NOT_STRICT_PROPERTY!r}, "the project's own"))
""",
}

#: Name of a run -> its arguments; each runs with the plugin and without it.
RUNS: dict[str, list[str]] = {
    "tests": ["-rA", "--continue-on-collection-errors", "--junitxml={junit}"],
    "markers": ["--markers"],
    "fixtures": ["--fixtures"],
}
if HAS_XDIST:
    RUNS["xdist"] = [
        "-p", "xdist", "-n", "2", "--continue-on-collection-errors", "--junitxml={junit}",
    ]  # fmt: skip

_TIMING = re.compile(r"\bin \d+(\.\d+)?s( \(\d+:\d\d:\d\d\))?")
#: The ``===``/``---`` that centre a section title (their length follows the title's).
_PADDING = re.compile(r"^[=-]+ | [=-]+$|^[=-]+$")


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    junit: Path | None

    @property
    def summary(self) -> str:
        """The last line, without its timing and its ``=`` padding."""
        lines = self.stdout.strip().splitlines()
        return _PADDING.sub("", _TIMING.sub("in Ns", lines[-1])) if lines else ""


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # No __pycache__ (assertion rewriting) in the project, so only the JUnit file is new there.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "100"
    return env


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Run]:
    """Every run of ``RUNS``, with the plugin (True) and with ``-p no:webhook_conformance``."""
    project = tmp_path_factory.mktemp("foreign")
    for name, text in PROJECT.items():
        (project / name).write_text(text, encoding="utf-8")
    before = _files(project)
    started: dict[tuple[str, bool], tuple[subprocess.Popen[str], Path | None]] = {}
    try:
        for name, template in RUNS.items():
            for plugin in (True, False):
                junit = project / f"junit-{name}-{'with' if plugin else 'bare'}.xml"
                argv = [arg.format(junit=junit.name) for arg in template]
                command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv]
                if not plugin:
                    command += ["-p", f"no:{PLUGIN}"]
                process = subprocess.Popen(
                    command,
                    cwd=project,
                    env=_environment(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                asks = any("{junit}" in arg for arg in template)
                started[name, plugin] = (process, junit if asks else None)
        results = {}
        for key, (process, path) in started.items():
            stdout, stderr = process.communicate(timeout=120)
            results[key] = Run(process.returncode, stdout, stderr, path)
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    asked = {r.junit.name for r in results.values() if r.junit is not None}
    assert _files(project) == before | asked, "the runs wrote more than the JUnit files"
    return results


def _normalized(run: Run) -> list[str]:
    """The output, without timings and the path of the JUnit file. The header's ``plugins:``
    line is pytest's own list of installed plugin distributions, so it drops ours."""
    lines = []
    for line in run.stdout.splitlines():
        if line.startswith("plugins: "):
            line = re.sub(r"webhook-conformance-[^,\s]+(, )?", "", line).removesuffix(", ")
        line = re.sub(r"junit-(\w+)-(with|bare)\.xml", r"junit-\1.xml", line)
        lines.append(_PADDING.sub("", _TIMING.sub("in Ns", line)))
    return lines


def _junit(path: Path) -> list[str]:
    """The JUnit report without timestamps, durations and host names; test cases sorted
    (xdist records them in the order its workers finish)."""
    root = ET.parse(path).getroot()  # noqa: S314 - our own subprocess wrote it
    for element in root.iter():
        for volatile in ("timestamp", "time", "hostname"):
            element.attrib.pop(volatile, None)
    suites = [root, *root.iter("testsuite")]
    cases = sorted(
        (ET.tostring(case, encoding="unicode") for case in root.iter("testcase")),
    )
    for suite in suites:
        for case in suite.findall("testcase"):
            suite.remove(case)
    return [ET.tostring(root, encoding="unicode"), *cases]


def _pair(runs: dict[tuple[str, bool], Run], name: str) -> tuple[Run, Run]:
    if name not in RUNS:
        pytest.skip("pytest-xdist is not installed")
    return runs[name, True], runs[name, False]


def test_the_plugin_is_loaded(runs: dict[tuple[str, bool], Run]) -> None:
    """The comparison means something: the entry point loads the plugin into the foreign run
    (pytest's header names it) and ``-p no:`` keeps it out."""
    with_plugin, without = _pair(runs, "tests")
    assert re.search(r"^plugins: .*webhook-conformance-", with_plugin.stdout, re.M)
    assert not re.search(r"^plugins: .*webhook-conformance-", without.stdout, re.M)


@pytest.mark.parametrize("name", ["tests", "xdist"])
def test_same_outcome_as_without_the_plugin(runs: dict[tuple[str, bool], Run], name: str) -> None:
    """Collection errors, failures, skips, xfails, setup errors and the foreign project's own
    ``*_case`` fixtures end the same with the plugin as without it: exit code, last line,
    JUnit XML (and the whole terminal output, where it is deterministic)."""
    with_plugin, without = _pair(runs, name)
    assert "INTERNALERROR" not in with_plugin.stdout + with_plugin.stderr
    assert with_plugin.stderr == without.stderr
    assert with_plugin.returncode == without.returncode == pytest.ExitCode.TESTS_FAILED
    assert with_plugin.summary == without.summary
    # xdist counts a collection error once per worker that hits it.
    errors = "4 errors" if name == "tests" else "errors"
    assert without.summary.startswith("1 failed, 5 passed, 1 skipped, 1 xfailed, ")
    assert without.summary.endswith(f"{errors} in Ns")
    assert with_plugin.junit is not None
    assert without.junit is not None
    assert _junit(with_plugin.junit) == _junit(without.junit)
    if name == "tests":  # xdist's progress output depends on which worker finishes first
        assert _normalized(with_plugin) == _normalized(without)


@pytest.mark.parametrize("name", ["markers", "fixtures"])
def test_adds_no_markers_or_fixtures(runs: dict[tuple[str, bool], Run], name: str) -> None:
    """``--markers`` and ``--fixtures`` list the same with and without the plugin."""
    with_plugin, without = _pair(runs, name)
    assert with_plugin.returncode == without.returncode == pytest.ExitCode.OK
    assert _normalized(with_plugin) == _normalized(without)
    assert "conformance_" not in "\n".join(_normalized(with_plugin))


def test_noconftest_with_target_url_is_a_usage_error(tmp_path: Path) -> None:
    """The suite's fixtures live in its conftest.py (so that foreign runs never see them);
    under --noconftest the plugin says so once instead of failing every case."""
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--noconftest",
        "--target-url", "http://127.0.0.1:9/webhook", "--profile", "zaits", "--secret", "s",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.strip() == (
        "ERROR: --noconftest with --target-url: the suite's fixtures are in its conftest.py"
    )
