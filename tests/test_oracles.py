"""The suite run against receivers built on each provider's official verification library
(tests/oracles/): a correct receiver must never fail. Each oracle passes every MUST, and shows
exactly the SHOULD (or MAY) violations recorded here, each for a reason in its library."""

from __future__ import annotations

from pathlib import Path

import pytest
from _suite_runner import describe, run_suite, violations
from oracles import ORACLES, PATH

from reference import serve_in_thread

pytestmark = pytest.mark.slow

#: Oracle name -> the requirement keys the suite reports as not-strict against it.
NOT_STRICT: dict[str, frozenset[str]] = {
    # standardwebhooks.Webhook.verify checks both directions of the 5-minute window ("Message
    # timestamp too old" / "too new"), the whsec_ key, the id and timestamp in the signed
    # content and every v1 item: no SHOULD is left to violate.
    "standardwebhooks": frozenset(),
    # svix.webhooks.Webhook.verify is standardwebhooks' verify after mapping headers.
    "svix": frozenset(),
    "stripe": frozenset(
        {
            # stripe-python's verify_header refuses only old timestamps
            # ("if tolerance and timestamp < time.time() - tolerance"): a signature dated
            # tolerance + 60 s ahead verifies. The profile makes this check a SHOULD for that
            # reason (levels: receiver.rejects-future-timestamp, decision future-timestamps).
            "receiver.rejects-future-timestamp",
        }
    ),
    # GitHub's documented procedure (HMAC-SHA256 of the raw body, compare_digest against
    # X-Hub-Signature-256) has no timestamp; the receiver never falls back to X-Hub-Signature.
    "github": frozenset(),
}


def test_every_oracle_has_a_record() -> None:
    assert set(NOT_STRICT) == set(ORACLES)


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_oracle_conforms(name: str, tmp_path: Path) -> None:
    """No requirement fails against the oracle (default mode, not --conformance-strict), and
    the not-strict ones are exactly those recorded in ``NOT_STRICT``."""
    oracle = ORACLES[name]
    secret = oracle.new_secret()
    with serve_in_thread(oracle.create_app(secret)) as base:
        results = run_suite(base + PATH, oracle.profile, secret, tmp_path)
    observed = violations(results)
    failed = {key for key, outcome in observed.items() if outcome == "failed"}
    assert not failed, f"the suite failed a correct receiver ({name}):\n{describe(results, failed)}"
    not_strict = {key for key, outcome in observed.items() if outcome == "not-strict"}
    assert not_strict == NOT_STRICT[name], (
        f"expected not-strict {sorted(NOT_STRICT[name])}, the suite found:\n"
        f"{describe(results, not_strict | NOT_STRICT[name])}"
    )
