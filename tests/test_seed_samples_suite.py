"""The suite run against the seed documents' own sample receivers: each violates exactly the
requirements README.md records for it, so the README's table is checked, not remembered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _suite_runner import describe, run_suite, violations
from seed_samples import NODE, SAMPLES

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
SECRET = "whsec_seed-sample-secret"
_ROW = re.compile(r"^\| (?P<sample>[a-z]+-(?:flask|node)) \| (?P<findings>.*) \|$", re.MULTILINE)
_FINDING = re.compile(r"((?:`[a-z0-9-]+`(?:, | and )?)+) (failed|not-strict)")


def readme_findings() -> dict[str, dict[str, str]]:
    """Sample name -> {requirement key: outcome}, read from README's findings table."""
    table = README.read_text(encoding="utf-8").split("## The documents' own sample receivers")[1]
    found: dict[str, dict[str, str]] = {}
    for row in _ROW.finditer(table):
        outcomes: dict[str, str] = {}
        for keys, outcome in _FINDING.findall(row["findings"]):
            for key in re.findall(r"`([a-z0-9-]+)`", keys):
                outcomes[f"receiver.{key}"] = outcome
        found[row["sample"]] = outcomes
    return found


def test_readme_records_every_sample() -> None:
    """README's table has one row per runnable sample, each naming at least one violation."""
    findings = readme_findings()
    assert set(findings) == set(SAMPLES)
    assert all(findings.values())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_violates_what_readme_says(name: str, tmp_path: Path) -> None:
    """The suite's violations of the sample, with their grades, are the README's."""
    sample = SAMPLES[name]
    if sample.language == "node" and NODE is None:
        pytest.skip("node is not installed")
    with sample.serve(SECRET) as url:
        results = run_suite(url, sample.profile, SECRET, tmp_path)
    observed = violations(results)
    expected = readme_findings()[name]
    assert observed == expected, (
        f"README says {expected}\nthe suite found:\n{describe(results, set(observed))}"
    )
