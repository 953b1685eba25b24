"""Run the conformance suite against a URL exactly as a user would, in a subprocess
(``pytest --target-url=... --conformance-report=FILE``), and read its JSON report."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import Profile

VIOLATED = frozenset({"failed", "not-strict"})


def run_suite(
    url: str, profile: str, secret: str, workdir: Path, *, timeout: float | None = None
) -> dict[str, dict[str, Any]]:
    """The suite's report on the receiver at ``url``: one entry per requirement, keyed by
    the id without its ``<profile>.`` prefix (``receiver.raw-body``)."""
    report = workdir / "report.json"
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--target-url={url}", f"--profile={profile}", "--role=receiver",
        f"--secret={secret}", f"--conformance-report={report}",
    ]  # fmt: skip
    if timeout is not None:
        command.append(f"--conformance-timeout={timeout}")
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=300, check=False
    )
    if not report.is_file():
        pytest.fail(
            f"the suite wrote no report (exit {result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    entries = json.loads(report.read_text(encoding="utf-8"))["requirements"]
    return {entry["id"].removeprefix(f"{profile}."): entry for entry in entries}


def violations(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Requirement key -> outcome, for the requirements the target violated."""
    return {key: e["outcome"] for key, e in results.items() if e["outcome"] in VIOLATED}


def describe(results: dict[str, dict[str, Any]], keys: set[str]) -> str:
    return "\n".join(
        f"  {key}: {results[key]['outcome']}: {results[key].get('message', '')[:600]}"
        for key in sorted(keys)
    )


def fixed_secret(profile: Profile, text: str) -> str:
    """The ``whsec_`` secret for ``text`` in the form the profile's key derivation takes:
    the text itself where the whole secret is the key, its base64 where the key is decoded."""
    key = profile.signature.primary.key
    if key.encoding == "base64":
        return key.strip_prefix + base64.b64encode(text.encode()).decode()
    return "whsec_" + text
