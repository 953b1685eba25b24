"""The sender run's first scenario, read before the checks: a run in which every scenario
fails for one reason (a trigger URL that refuses, a sender that cannot reach the capture
server) says that reason once, up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance._engine.config import CAPTURE_HOST, PUBLIC_URL, TARGET_URL
from conformance._http import excerpt, render_curl
from conformance.checks.sender._run import Scenario, SenderRun

__all__ = ["SenderDiagnosis", "diagnose"]


@dataclass(frozen=True, kw_only=True)
class SenderDiagnosis:
    headline: str
    advice: str
    scenario: Scenario

    def lines(self) -> list[str]:
        out = [f"DIAGNOSIS: {self.headline}", f"  {self.advice}"]
        trigger = self.scenario.trigger
        if trigger is not None:
            out.append("  Reproduce the trigger:")
            out += ["    " + line for line in render_curl(trigger.request).split("\n")]
        return out

    def as_dict(self) -> dict[str, Any]:
        trigger = self.scenario.trigger
        return {
            "headline": self.headline,
            "advice": self.advice,
            "status": None if trigger is None else trigger.status,
            "answer": "" if trigger is None else excerpt(trigger.body, 200),
            "reproduce": "" if trigger is None else render_curl(trigger.request),
        }


def diagnose(run: SenderRun) -> SenderDiagnosis | None:
    """Wait for the plain scenario (answered 200) and say why it failed, if it did."""
    scenario = run.scenario("delivered")
    if scenario.problem is not None:
        return SenderDiagnosis(
            headline=scenario.problem,
            advice=f"check {TARGET_URL}: it must be the sender's trigger URL, which takes "
            "POST {webhook_url, secret, event_type, data, time_scale} and answers 2xx with "
            '{"event_id": ...} (the reference sender serves it at /conformance/trigger)',
            scenario=scenario,
        )
    if not scenario.attempts:
        waited = scenario.finished - scenario.started
        return SenderDiagnosis(
            headline=f"the sender accepted the trigger (event {scenario.event_id}) but "
            f"delivered nothing to {scenario.webhook_url} within {waited:.1f} s",
            advice=f"check that the sender can reach the capture server: {CAPTURE_HOST} sets "
            f"the address it listens on, {PUBLIC_URL} the URL the sender is given; a sender "
            "with an SSRF guard must allow private targets for a run on loopback (the "
            "reference sender: --allow-private-targets)",
            scenario=scenario,
        )
    return None
