"""The suite writes nothing the user did not ask for. Run as a user runs it, from an empty
directory against a served reference receiver, it leaves that directory as it found it, apart
from the report file ``--conformance-report`` names; and hypothesis, which generates the
payloads, neither writes its ``.hypothesis/`` caches there nor warns about them.

The runs pass ``-p no:cacheprovider``: ``.pytest_cache/`` is pytest's own, written by any
pytest run in a directory without one, and not the suite's to decide.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import load_profile
from reference import create_app, serve_in_thread

PROFILE = "zaits"
SECRET = "whsec_no-stray-files"
#: Settings of the calling run that would change what the user's own run does.
_CALLER_ENV = ("HYPOTHESIS_STORAGE_DIRECTORY", "PYTEST_ADDOPTS")


@pytest.fixture(scope="module")
def target_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The reference receiver, its store outside the directories the suite runs in."""
    store = tmp_path_factory.mktemp("receiver") / "events.sqlite3"
    with serve_in_thread(create_app(load_profile(PROFILE), SECRET, db_path=store)) as base:
        yield f"{base}/webhook"


def _run_suite(url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--target-url={url}", f"--profile={PROFILE}", f"--secret={SECRET}", *extra,
    ]  # fmt: skip
    env = {name: value for name, value in os.environ.items() if name not in _CALLER_ENV}
    if env.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        command += ["-p", "conformance.plugin"]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize(
    "report",
    [pytest.param(None, id="no-report"), pytest.param("report.json", id="report")],
)
def test_the_suite_leaves_the_directory_it_runs_in_as_it_found_it(
    target_url: str, tmp_path: Path, report: str | None
) -> None:
    """The whole suite, slow checks included, against the reference: every case passes, and
    the directory holds nothing new but the report asked for."""
    extra = [] if report is None else [f"--conformance-report={report}"]
    done = _run_suite(target_url, tmp_path, *extra)
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.OK, output[-4000:]
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert left == ([] if report is None else [report])
    assert not re.search(r"Hypothesis\w*Warning", output), output[-4000:]
