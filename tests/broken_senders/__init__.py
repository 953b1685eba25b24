"""Deliberately broken webhook senders, each with exactly one defect, and the one sender check
that must catch each.

``CorrectSender`` (``_sender``) is a small sender of this corpus's own, independent of the
reference sender: it serves the trigger contract on loopback and delivers as the profile
says. Each defect (``_defects``) overrides one of its steps. ``DEFECTS`` names every defect,
the profile it is judged under, and the check key that alone catches it there (with the
cases of that check it fails, where the check has cases): under that profile the sender
fails that check and passes every other. ``GAPS`` are defects of the same kind that no check
catches yet, with the check that should and why it does not.

``SCALES`` is the time scale each profile's runs ask for: small enough that the longest
schedule lasts a few seconds, large enough that the delays the schedule check measures stay
measurable. The timeout scenario still holds its answer for the profile's real timeout plus
2 s, so defects are judged under ZTA (5 s) where the defect shows there.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _defects
from ._judge import Played, Verdicts, judge_run, play
from ._sender import TRIGGER_PATH, CorrectSender

__all__ = [
    "DEFECTS",
    "GAPS",
    "SCALES",
    "TRIGGER_PATH",
    "CorrectSender",
    "Defect",
    "Gap",
    "Played",
    "Verdicts",
    "judge_run",
    "play",
]

#: The time scale per profile (a schedule's delays times this).
SCALES: dict[str, float] = {
    "github": 1.0,  # one attempt: nothing to scale
    "standard-webhooks": 1e-5,  # 272105 s of delays -> 2.7 s; the first one 0.05 ms
    "stripe": 1e-5,  # 259200 s -> 2.6 s
    "zaits": 0.0003,  # 9360 s -> 2.8 s; the first delay 18 ms
    "zta": 0.04,  # 30 s -> 1.2 s: 0.2 s, then 1 s
    "ztrace": 0.003,  # 930 s -> 2.8 s
    "zupertry": 0.005,  # 360 s -> 1.8 s
}


@dataclass(frozen=True, kw_only=True)
class Defect:
    """A broken sender, the profile it is judged under, and the check that alone catches it
    there (``cases``: the check's cases it fails, where the check has cases)."""

    name: str
    sender: type[CorrectSender]
    profile: str
    caught_by: str
    cases: frozenset[str] | None = None

    @property
    def what(self) -> str:
        return " ".join((self.sender.__doc__ or "").split())


@dataclass(frozen=True, kw_only=True)
class Gap:
    """A broken sender no check catches: the check that should, and why it does not."""

    name: str
    sender: type[CorrectSender]
    profile: str
    should_be_caught_by: str
    why: str


def _cases(*names: str) -> frozenset[str]:
    return frozenset(names)


DEFECTS: tuple[Defect, ...] = (
    # -- retries (ZTA: its 5 s timeout keeps the timeout scenario short) --------------------
    Defect(
        # Under Zaits (which retries 4xx too) it fails the 4xx case as well, but the suite
        # waits for the missing attempts as if each could be held for the timeout scenario's
        # 12 s: that run takes 72 s. Under ZTA (3 attempts, 7 s) it takes 29 s.
        name="never-retries-an-answer",
        sender=_defects.NeverRetriesAnAnswer,
        profile="zta",
        caught_by="sender.retries-per-policy",
        cases=_cases("5xx"),
    ),
    Defect(
        name="retries-client-errors",
        sender=_defects.RetriesClientErrors,
        profile="zta",
        caught_by="sender.retries-per-policy",
        cases=_cases("4xx"),
    ),
    Defect(
        name="retries-after-success",
        sender=_defects.RetriesAfterSuccess,
        profile="zaits",
        caught_by="sender.retries-per-policy",
        cases=_cases("2xx"),
    ),
    Defect(
        name="retries-redirects",
        sender=_defects.RetriesRedirects,
        profile="zta",
        caught_by="sender.retries-per-policy",
        cases=_cases("3xx"),
    ),
    Defect(
        name="one-attempt-too-many",
        sender=_defects.OneAttemptTooMany,
        profile="zta",
        caught_by="sender.max-attempts",
    ),
    Defect(
        name="doubled-delays",
        sender=_defects.DoubledDelays,
        profile="zta",
        caught_by="sender.retry-schedule",
    ),
    Defect(
        name="no-timeout",
        sender=_defects.NoTimeout,
        profile="zta",
        caught_by="sender.attempt-timeout",
    ),
    Defect(
        name="never-retries-a-timeout",
        sender=_defects.NeverRetriesATimeout,
        profile="zta",
        caught_by="sender.attempt-timeout",
    ),
    Defect(
        name="retries-timeouts",
        sender=_defects.RetriesTimeouts,
        profile="github",
        caught_by="sender.attempt-timeout",
    ),
    Defect(
        name="gives-up-too-soon",
        sender=_defects.GivesUpTooSoon,
        profile="zta",
        caught_by="sender.attempt-timeout",
    ),
    Defect(
        name="follows-redirects",
        sender=_defects.FollowsRedirects,
        profile="zaits",
        caught_by="sender.no-redirects",
    ),
    Defect(
        name="retries-gone",
        sender=_defects.RetriesGone,
        profile="standard-webhooks",
        caught_by="sender.disables-on-410",
    ),
    Defect(
        name="forgets-disabled-urls",
        sender=_defects.ForgetsDisabledUrls,
        profile="standard-webhooks",
        caught_by="sender.disables-on-410",
    ),
    Defect(
        name="ignores-retry-after",
        sender=_defects.IgnoresRetryAfter,
        profile="standard-webhooks",
        caught_by="sender.honours-retry-after",
    ),
    # -- identity ---------------------------------------------------------------------------
    Defect(
        name="new-header-id-per-attempt",
        sender=_defects.NewHeaderIdPerAttempt,
        profile="standard-webhooks",
        caught_by="sender.stable-event-id",
        cases=_cases("retries"),
    ),
    Defect(
        name="one-header-id-for-all",
        sender=_defects.OneHeaderIdForAll,
        profile="standard-webhooks",
        caught_by="sender.stable-event-id",
        cases=_cases("distinct"),
    ),
    Defect(
        name="one-delivery-id-for-all",
        sender=_defects.OneDeliveryIdForAll,
        profile="github",
        caught_by="sender.stable-event-id",
        cases=_cases("distinct"),
    ),
    Defect(
        # ZTA identifies an event by its body's digest: no id check applies to it.
        name="reformats-retries",
        sender=_defects.ReformatsRetries,
        profile="zta",
        caught_by="sender.stable-body-across-retries",
    ),
    # -- signatures and timestamps ----------------------------------------------------------
    Defect(
        name="signs-other-bytes",
        sender=_defects.SignsOtherBytes,
        profile="zaits",
        caught_by="sender.signs-raw-body",
    ),
    Defect(
        name="unsigned-timestamp-header",
        sender=_defects.UnsignedTimestampHeader,
        profile="ztrace",
        caught_by="sender.signs-timestamp-and-body",
    ),
    Defect(
        name="hour-old-timestamp",
        sender=_defects.HourOldTimestamp,
        profile="stripe",
        caught_by="sender.fresh-timestamp",
    ),
    Defect(
        name="reuses-first-timestamp",
        sender=_defects.ReusesFirstTimestamp,
        profile="stripe",
        caught_by="sender.fresh-timestamp",
    ),
    Defect(
        name="wrong-legacy-signature",
        sender=_defects.WrongLegacySignature,
        profile="github",
        caught_by="sender.legacy-sha1-signature",
    ),
    # -- headers and payloads ---------------------------------------------------------------
    Defect(
        name="text-plain",
        sender=_defects.TextPlain,
        profile="zaits",
        caught_by="sender.required-headers",
        cases=_cases("content-type"),
    ),
    Defect(
        name="wrong-event-header",
        sender=_defects.WrongEventHeader,
        profile="zaits",
        caught_by="sender.event-header-matches-body",
    ),
    Defect(
        name="time-as-string",
        sender=_defects.TimeAsString,
        profile="zaits",
        caught_by="sender.payload-matches-schema",
    ),
    Defect(
        # The exhausted scenario's data (document.completed) has optional fields; the
        # delivered scenario's (document.signed) has only required ones.
        name="drops-optional-data",
        sender=_defects.DropsOptionalData,
        profile="zaits",
        caught_by="sender.delivers-triggered-data",
    ),
)

GAPS: tuple[Gap, ...] = (
    Gap(
        name="never-retries-connection-errors",
        sender=_defects.NeverRetriesConnectionErrors,
        profile="zta",
        should_be_caught_by="sender.retries-per-policy",
        why="no scenario provokes a connection error, which the requirement names among the "
        "outcomes retried: the capture server is an ASGI app, which cannot reset a connection",
    ),
)
