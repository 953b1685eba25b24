"""Judge a sender with the suite's checks in this process, case by case, exactly as the
plugin's test does (``conformance._engine.runner.judge`` on a ``SenderRun`` made by
``SenderRun.serving``), without starting a pytest run per sender.

``play`` serves a sender on loopback, starts a run against it, waits for every scenario and
judges every case. The run it returns keeps what the capture saw, so its cases can be judged
again later without replaying anything: with a check gutted (``disabled``), which is how
the meta-test proves that the corpus depends on every check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from conformance import Profile
from conformance._engine.config import SuiteConfig
from conformance._engine.registry import Case, cases_for
from conformance._engine.runner import CaseResult, Outcome, judge
from conformance._serving import serve_in_thread
from conformance.checks.sender import CHECKS, SenderRun

from ._sender import TRIGGER_PATH, CorrectSender

__all__ = ["VIOLATED", "Played", "Verdicts", "judge_run", "play"]

VIOLATED = frozenset({Outcome.FAILED, Outcome.NOT_STRICT})
_CRASHED = "the check itself failed"


@dataclass(frozen=True)
class Verdicts:
    """Every case's result against one sender, in catalogue order."""

    profile: Profile
    results: tuple[tuple[Case, CaseResult], ...]

    def violated(self) -> dict[str, set[str | None]]:
        """Check key (the primary one: ``sender.stable-event-id`` for Standard Webhooks'
        ``stable-webhook-id``) -> the names of its violated cases."""
        out: dict[str, set[str | None]] = {}
        for case, result in self.results:
            if result.outcome in VIOLATED and case.check is not None:
                out.setdefault(case.check.key, set()).add(case.name)
        return out

    def describe(self, keys: set[str] | None = None) -> str:
        """The message of every case that did not pass (of the checks in ``keys``)."""
        return "\n".join(
            f"  {case.id}: {result.outcome.value}: {result.message[:1500] or result.summary}"
            for case, result in self.results
            if case.check is not None
            and (keys is None or case.check.key in keys)
            and result.outcome in VIOLATED
        )


def _passes(run: SenderRun, case: str | None) -> None:
    """A check gutted to pass whatever the sender did."""


def judge_run(run: SenderRun, *, disabled: str | None = None) -> Verdicts:
    """Judge every sender case of the run's profile on what the run captured; the check
    for ``disabled`` (a primary key) is replaced by one that always passes. A check that
    crashes (a bug in the suite, not in the sender) raises instead of counting as a catch."""
    results = []
    for case in cases_for(CHECKS, run.profile):
        if disabled is not None and case.check is not None and case.check.key == disabled:
            case = replace(case, check=replace(case.check, run=_passes))
        result, _ = judge(case, run, strict=False)
        if result.summary.startswith(_CRASHED):
            raise AssertionError(result.message)
        results.append((case, result))
    return Verdicts(run.profile, tuple(results))


@dataclass(frozen=True)
class Played:
    """A finished run against one sender, and its verdicts."""

    run: SenderRun
    verdicts: Verdicts

    def rejudged(self, *, disabled: str) -> Verdicts:
        return judge_run(self.run, disabled=disabled)


def play(make: Callable[[Profile], CorrectSender], profile: Profile, scale: float) -> Played:
    """Serve ``make(profile)``, run the sender suite against its trigger with ``scale`` as
    the time scale, and judge every case once every scenario has finished."""
    sender = make(profile)
    with serve_in_thread(sender) as base:
        suite = SuiteConfig.from_options(
            target_url=base + TRIGGER_PATH,
            profile=str(profile.path),
            role="sender",
            time_scale=scale,
        )
        try:
            with SenderRun.serving(suite) as run:
                run.start()
                for spec in run.applicable():
                    run.scenario(spec.name)  # every scenario finished: nothing is judged live
                verdicts = judge_run(run)
        finally:
            sender.stop()
    return Played(run, verdicts)
