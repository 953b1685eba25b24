"""The HTML report (``--conformance-html``), the demo's matrix and the JUnit properties:
what they show, that what a target sent is text in them, never markup, and that no
credential reaches a report file. Chromium reads the pages in ``test_html_browser.py``."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _reports import HOSTILE_BODY, PROFILE, SECRET, Run, run_accepting_receiver

from conformance import load_profile
from conformance._engine.config import SuiteConfig
from conformance._engine.exhibits import Arrival, Timeline
from conformance._engine.failures import CheckFailure
from conformance._engine.html import draw_timeline, matrix_columns, render_matrix
from conformance._engine.redaction import REDACTED, Redactor
from conformance._engine.registry import Case, Check
from conformance._engine.report import Report
from conformance._engine.runner import judge
from conformance._http import Delivery, Exchange
from conformance.checks._capture import Attempt, Reply
from conformance.checks.sender._run import SCENARIOS, Scenario


class _Page(HTMLParser):
    """The elements of a page and its text, as a browser would parse them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_accepting_receiver(tmp_path_factory.mktemp("accepting"))


def _suite() -> SuiteConfig:
    return SuiteConfig.from_options(
        target_url="http://127.0.0.1:9/webhook", profile=PROFILE, role="receiver", secret=SECRET
    )


def _failing_report(body: bytes, *, headers: dict[str, str] | None = None) -> Report:
    """A report of one requirement whose case failed on an exchange answered with ``body``."""
    suite = _suite()
    requirement = next(r for r in suite.profile.requirements if r.role == "receiver")
    exchange = Exchange(
        request=Delivery.of(suite.target_url, headers or {"X-Note": "n"}, b'{"a":1}'),
        status=200,
        reason="OK",
        body=body,
    )

    def run(target: object, case: str | None) -> None:
        raise CheckFailure("accepted it", expected="4xx", evidence=exchange)

    report = Report.for_suite(suite, [])
    case = Case(requirement=requirement, check=Check(key=requirement.key, run=run), name="c")
    result, _ = judge(case, None, strict=False)
    report.record(requirement.id, result)
    return report


def test_a_script_in_a_body_renders_as_text(tmp_path: Path) -> None:
    """Markup in what the target answered is escaped: the page has no script, image or
    handler of its own making, and its text shows the markup as sent."""
    report = _failing_report(HOSTILE_BODY.encode(), headers={"X-Evil": '"><script>x()</script>'})
    report.write_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = _Page(html)
    assert [tag for tag, _ in page.tags if tag in ("script", "img", "iframe", "object")] == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    text = "".join(page.text)
    assert HOSTILE_BODY in text
    assert 'X-Evil: "><script>x()</script>' in text
    assert "&lt;script&gt;document.title" in html


def test_the_page_is_self_contained(failing_run: Run) -> None:
    """One file: no script, stylesheet, font or image is loaded from anywhere, and the
    Content Security Policy forbids it; rows expand without script (``<details>``)."""
    html = failing_run.html_path.read_text(encoding="utf-8")
    page = _Page(html)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not any("src" in attrs for _, attrs in page.tags)
    assert not re.search(r"url\(|@import", html)
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert all(href and not href.startswith(("http:", "https:", "//")) for href in hrefs)
    policy = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert policy[0]["content"].startswith("default-src 'none'")
    assert "details" in tags


def test_the_page_shows_the_run(failing_run: Run) -> None:
    """The header gives target, profile, role, strictness, date, version and verdict; each
    requirement is one row, with its cases, each failure's exchange and its curl line."""
    report = failing_run.report()
    text = "".join(_Page(failing_run.html_path.read_text(encoding="utf-8")).text)
    for value in (report["target"], report["date"], report["version"], report["verdict"]):
        assert value in text
    assert report["verdict"].startswith("not conformant: ")
    assert f"webhook-conformance: {PROFILE} receiver" in text
    assert "no: SHOULD violations are reported as not-strict" in text
    for requirement in report["requirements"]:
        assert requirement["id"] in text
        for case in requirement["cases"]:
            assert case["id"] in text
            if case["outcome"] == "failed":
                assert case["reproduction"]["command"] in text
                assert all(line in text for line in case["evidence"])


def test_no_credential_reaches_a_report_file(failing_run: Run, tmp_path: Path) -> None:
    """The secret of --secret, API keys in Authorization headers and secrets in JSON fields
    are redacted in the JSON and HTML reports (the terminal shows the run's own secret to
    whoever ran it, and nothing else of it here)."""
    for path in (failing_run.json_path, failing_run.html_path):
        assert SECRET not in path.read_text(encoding="utf-8")
    body = json.dumps({"id": "ep_1", "signing_secret": "whsec_fromtheapi0123"}).encode()
    report = _failing_report(body, headers={"Authorization": "Bearer sk_live_0123456789"})
    report.redact("hunter2-but-longer")
    report.write(tmp_path / "r.json")
    report.write_html(tmp_path / "r.html")
    for path in (tmp_path / "r.json", tmp_path / "r.html"):
        written = path.read_text(encoding="utf-8")
        assert "whsec_fromtheapi0123" not in written
        assert "sk_live_0123456789" not in written
        assert "redacted" in written


def test_the_redactor() -> None:
    """Known values anywhere (the longest first), credential fields by name, and
    Authorization header values; short values are left alone rather than mangle text."""
    redactor = Redactor(["abcdefgh", "abcdefghij", "xy"])
    assert redactor.text("k=abcdefghij; j=abcdefgh; xy") == f"k={REDACTED}; j={REDACTED}; xy"
    assert redactor.text('{"client_secret": "s\\"q", "name": "n"}') == (
        f'{{"client_secret": "{REDACTED}", "name": "n"}}'
    )
    assert redactor.text("-H 'Authorization: Bearer sk_1' \\") == (
        f"-H 'Authorization: Bearer {REDACTED}' \\"
    )
    assert redactor.data({"a": ["abcdefgh", 1, None]}) == {"a": [REDACTED, 1, None]}


# -- sender timelines -----------------------------------------------------------------------


def _attempt(number: int, at: float, *, status: int = 500, held: float = 0.01) -> Attempt:
    return Attempt(
        number=number,
        method="POST",
        path="/hook",
        headers=(),
        body=b"{}",
        arrived_at=1_800_000_000 + at,
        arrived=100.0 + at,
        answered=100.0 + at + held,
        reply=Reply(status=status),
    )


def _exhausted(times: list[float], profile: str = "zta", scale: float = 0.1) -> Timeline:
    """The timeline of the exhausted scenario with attempts arriving at ``times``."""
    loaded = load_profile(profile)
    scenario = Scenario(
        spec=next(s for s in SCENARIOS if s.name == "exhausted"),
        policy=loaded.delivery,
        token="t",
        webhook_url="http://127.0.0.1:1/t/hook",
        secret="s",
        event_type="pageview",
        data={},
        scale=scale,
        started=100.0,
        finished=100.0 + max(times, default=0.0) + 1,
        attempts=[_attempt(n, at) for n, at in enumerate(times, start=1)],
    )
    return scenario.timeline()


def _verdicts(timeline: Timeline) -> list[str]:
    return [a.verdict for a in timeline.arrivals]


def test_timeline_of_attempts_on_schedule() -> None:
    """ZTA retries after 5 s and 25 s: scaled by 0.1, attempts at 0, 0.5 and 3.0 s (each
    answered in 10 ms) keep to it."""
    policy = load_profile("zta").delivery
    assert policy.schedule_seconds[1:] == (5.0, 25.0)
    timeline = _exhausted([0.0, 0.51, 3.02])
    assert _verdicts(timeline) == ["on-time"] * 3
    assert [a.due for a in timeline.arrivals] == pytest.approx([0.0, 0.51, 3.02])
    assert timeline.missing == ()
    drawing = draw_timeline(timeline.as_dict())
    assert drawing.ok
    assert drawing.findings == []
    assert [m.kind for m in drawing.marks].count("attempt") == 3


def test_timeline_shows_a_wrong_schedule_and_a_missing_attempt() -> None:
    """A retry at once instead of after 0.5 s is early; the third attempt that never came is
    missing, drawn where it was due (counted on from the second)."""
    timeline = _exhausted([0.0, 0.02])
    assert _verdicts(timeline) == ["on-time", "early"]
    assert timeline.missing == pytest.approx((0.03 + 2.5,))
    drawing = draw_timeline(timeline.as_dict())
    assert not drawing.ok
    assert drawing.findings == ["#2 came early", "#3 missing"]
    assert [m.css for m in drawing.marks if m.kind == "link"] == ["on-time", "early"]
    assert [m.kind for m in drawing.marks].count("missing") == 1


def test_timeline_shows_an_extra_attempt() -> None:
    """An attempt beyond the policy's last is extra, and has no due time."""
    timeline = _exhausted([0.0, 0.51, 3.02, 3.5])
    assert _verdicts(timeline) == ["on-time", "on-time", "on-time", "extra"]
    assert timeline.arrivals[-1].due is None
    assert draw_timeline(timeline.as_dict()).findings == ["#4 is beyond the attempts expected"]


def test_timeline_round_trips_through_the_json_report() -> None:
    timeline = _exhausted([0.0, 0.6])
    assert Timeline.from_dict(json.loads(json.dumps(timeline.as_dict()))) == timeline
    assert isinstance(timeline.arrivals[0], Arrival)


def test_the_sender_page_draws_every_scenario(tmp_path: Path) -> None:
    """A sender report's page has one SVG timeline per scenario, and a failed case shows its
    scenario's timeline beside the capture."""
    suite = SuiteConfig.from_options(
        target_url="http://127.0.0.1:9/t", profile="zta", role="sender"
    )
    report = Report.for_suite(suite, [])
    report.timelines = [_exhausted([0.0, 0.51, 3.02]), _exhausted([0.0, 0.02])]
    report.write_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("<svg ") == 2
    assert html.count('class="timeline faulty"') == 1
    assert "#2 came early; #3 missing" in html


# -- the demo's matrix ----------------------------------------------------------------------


def _entry(profile: str, key: str, outcome: str) -> dict[str, Any]:
    rid = f"{profile}.{key}"
    return {"id": rid, "key": key, "level": "MUST", "outcome": outcome, "message": "m"}


def test_the_matrix_groups_keys_by_role_and_links_each_cell() -> None:
    """Columns are the keys of every run grouped by role; a profile without a key gets an
    empty cell; each cell links to the requirement's row on the run's page."""
    reports = [
        {"profile": "a", "role": "sender",
         "requirements": [_entry("a", "sender.x", "failed")]},
        {"profile": "a", "role": "receiver",
         "requirements": [_entry("a", "receiver.y", "passed")]},
        {"profile": "b", "role": "receiver",
         "requirements": [_entry("b", "receiver.y", "skipped"),
                          _entry("b", "receiver.z", "not-strict")]},
    ]  # fmt: skip
    roles = ["receiver", "sender", "management"]
    columns = [(c.role, c.key) for c in matrix_columns(reports, roles)]
    assert columns == [
        ("receiver", "receiver.y"),
        ("receiver", "receiver.z"),
        ("sender", "sender.x"),
    ]
    combined = {
        "conformant": False,
        "summary": {"passed": 1, "failed": 1, "not-strict": 1, "skipped": 1},
        "profiles": reports,
        "date": "2026-12-02T00:00:00+00:00",
        "version": "0",
    }
    pages = {("a", "receiver"): "p/a-receiver.html", ("a", "sender"): "p/a-sender.html"}
    html = render_matrix(combined, roles=roles, pages=pages, took=1.0)
    assert 'href="p/a-sender.html#req-a.sender.x"' in html
    assert 'href="p/a-receiver.html#req-a.receiver.y"' in html
    assert 'data-id="b.receiver.y" data-outcome="skipped"' in html  # no page: no link
    assert html.count('class="none') == 2  # a has no receiver.z; b has no sender.x


# -- JUnit ----------------------------------------------------------------------------------


def test_junit_properties_carry_the_requirement(failing_run: Run) -> None:
    """Every test case of the suite carries its requirement id, level, graded outcome and
    source document, agreeing with the JSON report."""
    report = failing_run.report()
    requirements = {requirement["id"]: requirement for requirement in report["requirements"]}
    outcomes = {c["id"]: c["outcome"] for r in report["requirements"] for c in r["cases"]}
    seen: dict[str, int] = {}
    junit = ET.parse(failing_run.junit_path)  # noqa: S314 - pytest's own file, just written
    for testcase in junit.getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        case_id = re.fullmatch(r"test_receiver\[(.+)\]", testcase.get("name", ""))
        assert case_id is not None, testcase.attrib
        requirement = requirements[properties["requirement"] or ""]
        assert case_id[1].startswith(requirement["id"])
        assert properties["level"] == requirement["level"]
        assert properties["source"] == requirement["source"]["document"]
        # A case skipped at collection (verified by inspection) is in the report as its
        # requirement's reason only.
        assert properties["outcome"] == outcomes.get(case_id[1], "skipped"), case_id[1]
        seen[properties["outcome"] or ""] = seen.get(properties["outcome"] or "", 0) + 1
    assert set(seen) == {"passed", "failed", "not-strict", "skipped"}, seen
