"""The management suite against the broken management APIs in ``tests/broken_management``.

The claims, each a test: the reference behind a middleware that changes nothing passes
every check (``test_the_pass_through_passes``); each defect fails exactly the checks it
names and passes every other (``test_defect_is_caught_by_its_checks``); every check but the
fuzzing has a defect that it alone catches
(``test_every_check_has_a_defect_only_it_catches``); and gutting a defect's check
(replacing it by one that always passes) lets the defect through, unless another check
named for it still catches it (``test_gutting_a_check_lets_its_defect_through``).
Cases are judged in this process, as the plugin's test judges them; ``management.fuzz`` is
left out (see the corpus's docstring).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from broken_management import DEFECTS, KEYS, SITES, Broken, Defect

from conformance import load_profile
from conformance._engine.config import SuiteConfig
from conformance._engine.registry import cases_for
from conformance._engine.runner import Outcome, judge
from conformance._serving import serve_in_thread
from conformance.checks.management import CHECKS, ManagementApi
from reference.sender import create_sender_app

pytestmark = pytest.mark.slow

_LEFT_OUT = "management.fuzz"
_NOTHING = Defect(name="nothing", profile="zaits", caught_by=frozenset())


@contextmanager
def _serving(defect: Defect, workdir: Path) -> Iterator[ManagementApi]:
    profile = load_profile(defect.profile)
    sites = SITES if profile.management and profile.management.site_query else None
    app = create_sender_app(
        profile,
        db_path=workdir / f"{defect.name}.sqlite3",
        allow_private_targets=True,
        api_keys=KEYS,
        sites=sites,
    )
    with serve_in_thread(Broken(app, defect)) as base:
        extra = {"site_id": "site_a", "other_site_id": "site_b"} if sites else {}
        config = SuiteConfig.from_options(
            target_url=base,
            profile=profile.name,
            role="management",
            api_key=KEYS[0],
            other_api_key=KEYS[1],
            env={},
            **extra,
        )
        with ManagementApi.serving(config) as api:
            yield api


def _failing(api: ManagementApi) -> dict[str, list[str]]:
    """The requirement keys whose cases did not pass, with the failing case ids."""
    out: dict[str, list[str]] = {}
    for case in cases_for(CHECKS, api.profile):
        if case.requirement.key == _LEFT_OUT:
            continue
        result, _ = judge(case, api, strict=True)
        api.clean_up()  # as the suite's test does after each case
        if result.outcome in (Outcome.FAILED, Outcome.NOT_STRICT):
            out.setdefault(case.requirement.key, []).append(f"{case.id}: {result.summary}")
    return out


def test_the_pass_through_passes(tmp_path: Path) -> None:
    """The reference behind a middleware that changes nothing fails no check."""
    with _serving(_NOTHING, tmp_path) as api:
        assert _failing(api) == {}


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_defect_is_caught_by_its_checks(defect: Defect, tmp_path: Path) -> None:
    """Under its profile, the defect fails exactly the checks named for it."""
    with _serving(defect, tmp_path) as api:
        failing = _failing(api)
    assert set(failing) == defect.caught_by, failing


def test_every_check_has_a_defect_only_it_catches() -> None:
    """Every registered check but the fuzzing is the one catching check of some defect
    (``test_defect_is_caught_by_its_checks`` proves that it is, and
    ``test_gutting_a_check_lets_its_defect_through`` that the defect then gets through).
    ``management.fuzz`` is left out: its generated requests meet several defects by design,
    so no defect is its alone."""
    alone = {next(iter(d.caught_by)) for d in DEFECTS if len(d.caught_by) == 1}
    assert [c.key for c in CHECKS if c.key != _LEFT_OUT and c.key not in alone] == []


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_gutting_a_check_lets_its_defect_through(defect: Defect, tmp_path: Path) -> None:
    """With every check named for the defect gutted, the defect passes every check."""
    with contextlib.ExitStack() as stack:
        for key in defect.caught_by:
            stack.enter_context(CHECKS.replaced(key, lambda api, case: None))
        with _serving(defect, tmp_path) as api:
            assert _failing(api) == {}


def test_the_fuzzing_finds_a_server_error(tmp_path: Path) -> None:
    """Schemathesis's invalid bodies meet the 500 that a body which is not JSON provokes:
    the fuzzing's not_a_server_error case fails, counting the requests made, and its
    reproduction has the key redacted."""
    defect = next(d for d in DEFECTS if d.name == "500-on-malformed")
    with _serving(defect, tmp_path) as api:
        case = next(
            c
            for c in cases_for(CHECKS, api.profile)
            if c.requirement.key == _LEFT_OUT and c.name == "not_a_server_error"
        )
        result, fails = judge(case, api, strict=True)
    assert result.outcome is Outcome.NOT_STRICT
    assert fails
    assert re.search(r"distinct failure\(s\) of not_a_server_error in \d+ requests", result.summary)
    assert "Bearer K1" not in result.message
