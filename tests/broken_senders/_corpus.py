"""The whole corpus judged at once: the correct sender under every profile, every defect and
every gap under its profile, all played concurrently (a run is mostly waiting for its
scenarios), then every check gutted in turn and the runs of the defects it alone catches
judged again.

The result is plain data (``Matrix``, which round-trips through JSON), so that the test
session's workers can share one computation.

Timing. The schedule check times every retry to within 0.15 s (or x0.8-x1.5), and some
scaled delays are a few milliseconds, so a run must not be held up by the others. Runs start
a moment apart (``STAGGER_SECONDS``: the setup of a run, its servers, triggers and payloads,
takes about 0.2 s of CPU), the side jobs start once every run's timed retries are over, and
the interpreter switches threads more often than by default while the runs play. On a busy
machine a retry can still come late: a run whose verdict differs from what is expected of
it only in ``TIMED`` checks is played once more, alone with the others so affected, and the
second verdict stands (``Matrix.replayed`` names such runs). A check that fails a correct
sender twice in a row is reported.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from conformance import list_profiles, load_profile
from conformance.checks._payloads import examples

from . import DEFECTS, GAPS, SCALES
from ._judge import VIOLATED, Played, Verdicts, play
from ._sender import CorrectSender

__all__ = [
    "SIDE_DELAY_SECONDS",
    "STAGGER_SECONDS",
    "SWITCH_INTERVAL",
    "TIMED",
    "CaseRecord",
    "Job",
    "Matrix",
    "RunRecord",
    "compute",
    "jobs",
]

#: Seconds between the starts of two runs.
STAGGER_SECONDS = 0.3
#: The checks whose verdict depends on the machine keeping time.
TIMED = frozenset({"sender.retry-schedule"})
#: Seconds after the last run started before the side jobs start: by then every run's
#: timed retries are over, which a side job's CPU (a pytest subprocess starting) would delay.
SIDE_DELAY_SECONDS = 4.0
#: The interpreter's thread switch interval while the runs play (the default is 5 ms): a
#: thread whose retry is due gets the interpreter sooner from one that computes.
SWITCH_INTERVAL = 0.001


@dataclass(frozen=True, kw_only=True)
class Job:
    """One run: a sender and the profile it is judged under."""

    kind: Literal["control", "defect", "gap"]
    name: str
    sender: type[CorrectSender]
    profile: str
    #: The check keys the run is expected to violate (a gap: none, as yet).
    expected: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


def jobs() -> list[Job]:
    """Every run, in the order they start: the defects first (the longest run, a sender
    that makes fewer attempts than the suite waits for, is the first defect), then the
    correct sender under each profile, then the gaps."""
    out = [
        Job(
            kind="defect",
            name=d.name,
            sender=d.sender,
            profile=d.profile,
            expected=frozenset({d.caught_by}),
        )
        for d in DEFECTS
    ]
    out += [Job(kind="control", name=n, sender=CorrectSender, profile=n) for n in list_profiles()]
    out += [Job(kind="gap", name=g.name, sender=g.sender, profile=g.profile) for g in GAPS]
    return out


@dataclass(frozen=True, kw_only=True)
class CaseRecord:
    """One case's result: its requirement (key and level), its check and case, the grade."""

    id: str
    requirement: str
    level: str
    check: str | None
    case: str | None
    outcome: str
    message: str


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """Every case's result against one sender."""

    profile: str
    cases: tuple[CaseRecord, ...]

    @classmethod
    def of(cls, verdicts: Verdicts) -> RunRecord:
        return cls(
            profile=verdicts.profile.name,
            cases=tuple(
                CaseRecord(
                    id=case.id,
                    requirement=case.requirement.key,
                    level=case.requirement.level,
                    check=None if case.check is None else case.check.key,
                    case=case.name,
                    outcome=result.outcome.value,
                    message=result.message or result.summary,
                )
                for case, result in verdicts.results
            ),
        )

    def violated(self) -> dict[str, set[str | None]]:
        """Check key -> the names of its violated cases."""
        out: dict[str, set[str | None]] = {}
        for record in self.cases:
            if record.check is not None and record.outcome in _VIOLATED:
                out.setdefault(record.check, set()).add(record.case)
        return out

    def describe(self, keys: set[str] | None = None) -> str:
        return "\n".join(
            f"  {r.id}: {r.outcome}: {r.message[:2000]}"
            for r in self.cases
            if r.outcome in _VIOLATED and (keys is None or r.check in keys)
        )


_VIOLATED = frozenset(outcome.value for outcome in VIOLATED)


@dataclass(frozen=True, kw_only=True)
class Matrix:
    """The corpus's results: every run by job key; for each check key, what each defect it
    alone catches violates with that check gutted; and the results of the side jobs."""

    runs: dict[str, RunRecord]
    gutted: dict[str, dict[str, dict[str, list[str | None]]]]
    side: dict[str, Any] = field(default_factory=dict)
    #: The job keys of the runs played twice (see the module docstring), with the first
    #: verdict's unexpected violations.
    replayed: dict[str, str] = field(default_factory=dict)

    def run(self, kind: str, name: str) -> RunRecord:
        return self.runs[f"{kind}:{name}"]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Matrix:
        raw = json.loads(text)
        runs = {
            key: RunRecord(
                profile=run["profile"], cases=tuple(CaseRecord(**c) for c in run["cases"])
            )
            for key, run in raw["runs"].items()
        }
        return cls(runs=runs, gutted=raw["gutted"], side=raw["side"], replayed=raw["replayed"])


def _warm(profiles: set[str]) -> None:
    """Draw every event's examples before the runs start: the drawing (hypothesis) is not
    made for threads, and the runs' scenarios and senders all ask for examples."""
    for name in sorted(profiles):
        profile = load_profile(name)
        for event in profile.event_names:
            examples(profile, event)


def _play_all(
    planned: list[Job], side: Mapping[str, Callable[[], Any]]
) -> tuple[dict[str, Played], dict[str, Any]]:
    """Play the jobs concurrently, a moment apart, with the side jobs after them."""

    def started(index: int, job: Job) -> Played:
        time.sleep(index * STAGGER_SECONDS)
        profile = load_profile(job.profile)
        return play(job.sender, profile, SCALES[profile.name])

    def later(task: Callable[[], Any]) -> Any:
        time.sleep(len(planned) * STAGGER_SECONDS + SIDE_DELAY_SECONDS)
        return task()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(max_workers=len(planned) + len(side)) as pool:
            futures = {job.key: pool.submit(started, i, job) for i, job in enumerate(planned)}
            others = {name: pool.submit(later, task) for name, task in side.items()}
            played = {key: future.result() for key, future in futures.items()}
            return played, {name: future.result() for name, future in others.items()}
    finally:
        sys.setswitchinterval(interval)


def _off_by_timing(job: Job, played: Played) -> str | None:
    """The unexpected violations of a run, where they are all of ``TIMED`` checks."""
    unexpected = set(played.verdicts.violated()) ^ job.expected
    if not unexpected or not unexpected <= TIMED:
        return None
    return played.verdicts.describe(unexpected)


def compute(side: Mapping[str, Callable[[], Any]] | None = None) -> Matrix:
    """Play every job concurrently (with the ``side`` jobs, whose results must be JSON),
    play again the runs a busy machine put off schedule, then judge the gutted checks on
    the runs played."""
    planned = jobs()
    _warm({job.profile for job in planned})
    played, side_results = _play_all(planned, dict(side or {}))
    late = {job.key: why for job in planned if (why := _off_by_timing(job, played[job.key]))}
    if late:
        again, _ = _play_all([job for job in planned if job.key in late], {})
        played.update(again)
    gutted: dict[str, dict[str, dict[str, list[str | None]]]] = {}
    for defect in DEFECTS:
        rejudged = played[f"defect:{defect.name}"].rejudged(disabled=defect.caught_by)
        gutted.setdefault(defect.caught_by, {})[defect.name] = {
            key: sorted(cases, key=str) for key, cases in rejudged.violated().items()
        }
    return Matrix(
        runs={key: RunRecord.of(p.verdicts) for key, p in played.items()},
        gutted=gutted,
        side=side_results,
        replayed=late,
    )
