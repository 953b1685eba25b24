"""How many requests the management suite's fuzzing makes against the reference, and what
it finds, per profile with a management API (the closing note's figures for issue 9).

    python bench/fuzz_reference.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance import list_profiles, load_profile
from conformance._engine.config import SuiteConfig
from conformance._serving import serve_in_thread
from conformance.checks.management import ManagementApi
from conformance.checks.management.fuzz import fuzz
from reference.sender import create_sender_app

KEYS = ("sk_fuzz_a", "sk_fuzz_b")
SITES = ("site_a", "site_b")


def main() -> int:
    total = 0
    for name in list_profiles():
        profile = load_profile(name)
        if profile.management is None:
            continue
        scoped = bool(profile.management.fields.get("site"))
        sites = {key: [site] for key, site in zip(KEYS, SITES, strict=True)} if scoped else {}
        with tempfile.TemporaryDirectory() as tmp:
            app = create_sender_app(
                profile, db_path=Path(tmp) / "sender.sqlite3", allow_private_targets=True,
                api_keys=KEYS, sites=sites,
            )  # fmt: skip
            with serve_in_thread(app) as base:
                suite = SuiteConfig.from_options(
                    target_url=base, profile=name, role="management", api_key=KEYS[0],
                    other_api_key=KEYS[1], site_id=SITES[0] if scoped else None,
                    other_site_id=SITES[1] if scoped else None, env={},
                )  # fmt: skip
                with ManagementApi.serving(suite) as api:
                    result = fuzz(api)
        total += result.requests
        found = ", ".join(f"{check} {len(f)}" for check, f in result.failures.items())
        print(f"{name:7} {result.requests:4} requests; failures: {found}")
    print(f"all     {total:4} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
