"""The HTML reports: one run's page (``--conformance-html``) and the demo's matrix of
profiles x requirement keys.

Both are rendered from the redacted data of the JSON reports by Jinja2 templates with
autoescaping on, so every value that came from a target (bodies, headers, messages) is
text, never markup. A page is self-contained: its styles are inline, a Content Security
Policy forbids loading anything, and it has no script; the rows expand with ``<details>``.
The geometry of each sender timeline is computed here and drawn as inline SVG.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["OUTCOME_SYMBOLS", "Drawing", "draw_timeline", "render_matrix", "render_report"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
#: What a matrix cell shows for each outcome (its title says the outcome in words).
OUTCOME_SYMBOLS = {"passed": "\u2713", "failed": "\u2717", "not-strict": "!", "skipped": "\u2013"}

# The timeline's frame, in SVG user units.
_WIDTH, _LEFT, _RIGHT = 760.0, 86.0, 18.0
_DUE_Y, _ARRIVED_Y, _AXIS_Y, _HEIGHT = 24.0, 58.0, 112.0, 130.0


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["seconds"] = _seconds
    env.globals["draw_timeline"] = draw_timeline
    env.globals["symbols"] = OUTCOME_SYMBOLS
    return env


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if abs(value) < 10 else f"{value:.1f} s"


@dataclass(frozen=True, kw_only=True)
class Mark:
    """One thing drawn: an attempt's bar, a due diamond, the line joining them, a label."""

    kind: str
    x: float
    y: float
    x2: float = 0.0
    y2: float = 0.0
    css: str = ""
    text: str = ""
    title: str = ""
    #: Where a label's text hangs from its x: ``start``, or ``end`` near the right edge.
    anchor: str = "start"


@dataclass(kw_only=True)
class Drawing:
    """A timeline laid out: the marks, the axis ticks, and its findings in words."""

    width: float = _WIDTH
    height: float = _HEIGHT
    left: float = _LEFT
    right: float = _WIDTH - _RIGHT
    due_y: float = _DUE_Y
    arrived_y: float = _ARRIVED_Y
    axis_y: float = _AXIS_Y
    marks: list[Mark] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    ok: bool = True


def _tick_step(span: float) -> float:
    """A round step that puts about five ticks on the axis."""
    raw = span / 5
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _status_class(arrival: Mapping[str, Any]) -> str:
    status = arrival["status"]
    return "abandoned" if status is None else f"s{status // 100}xx"


def draw_timeline(timeline: Mapping[str, Any]) -> Drawing:
    """Lay out a timeline (``Timeline.as_dict()``): the attempts on one row, when each was
    due on the row above, joined by a line coloured by how the two agree; the expected
    attempts that never came as hollow marks; attempts beyond the expected ones in red."""
    arrivals: Sequence[Mapping[str, Any]] = timeline["arrivals"]
    missing: Sequence[float] = timeline["missing"]
    moments = [timeline["watched"], *missing]
    for a in arrivals:
        moments += [a["at"], a["ended"], a["due"] or 0.0]
    span = max(max(moments, default=0.0) * 1.04, 0.05)
    width = _WIDTH - _LEFT - _RIGHT

    def x(t: float) -> float:
        return round(_LEFT + max(t, 0.0) / span * width, 2)

    drawing = Drawing()
    step = _tick_step(span)
    drawing.ticks.extend((x(n * step), f"{n * step:g} s") for n in range(int(span / step) + 1))
    # Labels go where they fit: attempts close together share a label row otherwise, and
    # one that fits nowhere is left to the tooltip.
    due_labels, answer_labels = _Rows(1), _Rows(3)
    for a in arrivals:
        verdict, due, number = a["verdict"], a["due"], a["number"]
        where = f"arrived at +{_seconds(a['at'])}, answered {a['answer']}"
        if due is not None:
            where += f"; due at +{_seconds(due)} ({verdict.replace('-', ' ')})"
            drawing.marks.append(Mark(kind="due", x=x(due), y=_DUE_Y, css="due",
                                      title=f"#{number} due at +{_seconds(due)}"))  # fmt: skip
            if due_labels.place(x(due), f"#{number}") is not None:
                drawing.marks.append(Mark(kind="label", x=x(due), y=_DUE_Y - 9, css="tick",
                                          text=f"#{number}"))  # fmt: skip
            drawing.marks.append(Mark(kind="link", x=x(due), y=_DUE_Y + 6, x2=x(a["at"]),
                                      y2=_ARRIVED_Y - 8, css=verdict))  # fmt: skip
        start, end = x(a["at"]), x(a["ended"])
        drawing.marks.append(Mark(kind="attempt", x=start, y=_ARRIVED_Y - 7,
                                  x2=max(end - start, 3.0), css=f"{_status_class(a)} {verdict}",
                                  title=f"#{number} {where}"))  # fmt: skip
        label = f"#{number} {a['answer']}"
        row = answer_labels.place(start, label)
        if row is not None:
            drawing.marks.append(_label(start, _ARRIVED_Y + 22 + row * 11, f"label {verdict}",
                                        label))  # fmt: skip
        if verdict != "on-time":
            drawing.findings.append(f"#{number} {_VERDICT_WORDS[verdict]}")
            # A followed redirect is for sender.no-redirects to judge, not the schedule.
            drawing.ok = drawing.ok and verdict == "elsewhere"
    first_missing = len([a for a in arrivals if a["verdict"] != "elsewhere"]) + 1
    for offset, due in enumerate(missing):
        number = first_missing + offset
        title = f"#{number} was due at +{_seconds(due)} and never came"
        drawing.marks.append(Mark(kind="due", x=x(due), y=_DUE_Y, css="due missing",
                                  title=title))  # fmt: skip
        drawing.marks.append(Mark(kind="missing", x=x(due), y=_ARRIVED_Y, css="missing",
                                  title=title))  # fmt: skip
        label = f"#{number} missing"
        row = answer_labels.place(x(due), label)
        if row is not None:
            drawing.marks.append(_label(x(due), _ARRIVED_Y + 22 + row * 11, "label missing",
                                        label))  # fmt: skip
        drawing.findings.append(f"#{number} missing")
    drawing.ok = drawing.ok and not missing
    return drawing


def _label(x: float, y: float, css: str, text: str) -> Mark:
    """A label at ``x``, hanging left of it where it would run past the right edge."""
    anchor = "end" if x + len(text) * _Rows.CHAR > _WIDTH - 4 else "start"
    return Mark(kind="label", x=x, y=y, css=css, text=text, anchor=anchor)


class _Rows:
    """Rows of text labels, each placed in the first row where it overlaps no other."""

    #: About how wide one character of the 11-unit label font is.
    CHAR = 6.2

    def __init__(self, count: int) -> None:
        self._ends = [-math.inf] * count

    def place(self, x: float, text: str) -> int | None:
        for row, end in enumerate(self._ends):
            if x >= end + 4:
                self._ends[row] = x + len(text) * self.CHAR
                return row
        return None


_VERDICT_WORDS = {
    "early": "came early",
    "late": "came late",
    "extra": "is beyond the attempts expected",
    "elsewhere": "went to the redirect's Location",
}


def render_report(report: Mapping[str, Any]) -> str:
    """One run's page, from its JSON report (``Report.as_dict()``)."""
    template = _environment().get_template("report.html.j2")
    return template.render(report=report, version=report["version"])


@dataclass(frozen=True, kw_only=True)
class Column:
    role: str
    key: str


def matrix_columns(reports: Iterable[Mapping[str, Any]], roles: Sequence[str]) -> list[Column]:
    """Every requirement key of the reports, grouped by role in ``roles`` order, each in
    the order it first appears."""
    seen: dict[tuple[str, str], None] = {}
    ordered = sorted(reports, key=lambda r: roles.index(r["role"]))
    for report in ordered:
        for requirement in report["requirements"]:
            seen.setdefault((report["role"], requirement["key"]), None)
    return [Column(role=role, key=key) for role, key in seen]


def render_matrix(
    combined: Mapping[str, Any],
    *,
    roles: Sequence[str],
    pages: Mapping[tuple[str, str], str],
    took: float,
) -> str:
    """The demo's page: a row per profile, a column per requirement key grouped by role,
    each cell its outcome linked to the requirement's row on the run's own page
    (``pages``: (profile, role) -> relative URL)."""
    reports: Sequence[Mapping[str, Any]] = combined["profiles"]
    columns = matrix_columns(reports, roles)
    profiles = list(dict.fromkeys(r["profile"] for r in reports))
    cells: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for report in reports:
        for requirement in report["requirements"]:
            cells[report["profile"], report["role"], requirement["key"]] = requirement
    groups = [(role, sum(1 for c in columns if c.role == role)) for role in roles]
    return (
        _environment()
        .get_template("matrix.html.j2")
        .render(
            combined=combined,
            version=combined["version"],
            columns=columns,
            groups=[(role, n) for role, n in groups if n],
            profiles=profiles,
            cells=cells,
            pages=pages,
            reports={(r["profile"], r["role"]): r for r in reports},
            took=took,
        )
    )
