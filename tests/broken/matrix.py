"""Print the corpus matrix (checks x defects) and the mutation scores, as Markdown.

    python tests/broken/matrix.py            # every profile
    python tests/broken/matrix.py zaits zta  # some

Each receiver of the corpus is served on loopback and judged by every check, as
``test_broken_corpus`` does. A row names, for one check, the defects that fail it and no other
check (under at least one profile) and the defects that fail it among others. The mutation
score is the share of checks whose removal lets some defect through; the case figure is the
share of (profile, case) pairs failed by a defect that fails no other check.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broken import BROKEN, SUITE_TIMEOUT, applies, secret_for
from broken._judge import judge_receiver
from conformance import list_profiles, load_profile
from conformance._engine.registry import cases_for
from conformance.checks.receiver import CHECKS
from reference import serve_in_thread


def main(names: list[str]) -> None:
    profiles = [load_profile(n) for n in names or list_profiles()]
    keys = CHECKS.keys()
    only: dict[str, set[str]] = {k: set() for k in keys}  # check -> "defect (profile)"
    also: dict[str, set[str]] = {k: set() for k in keys}
    all_cases: set[tuple[str, str, str | None]] = set()
    guarded: set[tuple[str, str, str | None]] = set()  # by a defect only its check catches
    for profile in profiles:
        all_cases |= {
            (profile.name, c.requirement.key, c.name)
            for c in cases_for(CHECKS, profile)
            if c.skip_reason is None
        }
        for defect, factory in BROKEN.items():
            if not applies(defect, profile):
                continue
            secret = secret_for(profile)
            with serve_in_thread(factory(profile, secret)) as url:
                violated = judge_receiver(
                    f"{url}/webhook", profile, secret, timeout=SUITE_TIMEOUT
                ).violated()
            for key, cases in violated.items():
                (only if len(violated) == 1 else also)[key].add(defect)
                if len(violated) == 1:
                    guarded |= {(profile.name, key, case) for case in cases}
            print(f"judged {defect} under {profile.name}", file=sys.stderr)
    print("| check | defects that fail it and nothing else | defects that fail it and more |")
    print("|---|---|---|")
    for key in keys:
        row = [", ".join(f"`{d}`" for d in sorted(group[key])) for group in (only, also)]
        print(f"| `{key}` | " + " | ".join(row) + " |")
    killed = [k for k in keys if only[k]]
    print()
    print(
        f"mutation score (checks whose removal lets a defect through): {len(killed)}/{len(keys)}"
        f" = {len(killed) / len(keys):.0%}"
    )
    print(
        f"cases failed by a defect that fails no other check: {len(guarded)}/{len(all_cases)}"
        f" = {len(guarded) / len(all_cases):.0%}"
    )
    rest = sorted(all_cases - guarded, key=str)
    print("the other cases: " + ", ".join(f"{p}.{k}" + (f"-{c}" if c else "") for p, k, c in rest))


if __name__ == "__main__":
    main(sys.argv[1:])
