"""Benchmark (b): wall time of the receiver-role suite against the reference, per profile.

Target: 10 s or less per profile without the slow checks. The baseline, measured in the
same run, is pytest's own start-up with this plugin loaded (one trivial test), so the ratio
says how much of the wall time is the suite's work rather than interpreter and import cost.

    python bench/bench_suite.py [--rounds 3] [--with-slow]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._targets import ROOT, running
from conformance import list_profiles

SECRET = "whsec_benchmark0123456789"


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--with-slow", action="store_true", help="include the slow checks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "test_trivial.py").write_text("def test_nothing():\n    assert True\n")
        (work / "pytest.ini").write_text("[pytest]\n")
        baseline = statistics.median(
            timed(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"],
                work,
            )
            for _ in range(args.rounds)
        )
        print(f"baseline: pytest start-up with one trivial test  {baseline:.2f} s")
        worst = 0.0
        for profile in list_profiles():
            times = []
            for _ in range(args.rounds):
                with running(
                    "reference", profile, SECRET, work / f"{profile}.sqlite3", "plain"
                ) as port:
                    command = [
                        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--target-url=http://127.0.0.1:{port}/webhook", f"--profile={profile}",
                        "--role=receiver", f"--secret={SECRET}",
                    ]  # fmt: skip
                    if not args.with_slow:
                        command += ["-m", "not slow"]
                    times.append(timed(command, work))
            median = statistics.median(times)
            worst = max(worst, median)
            print(f"{profile:9} suite {median:5.2f} s  = {median / baseline:4.1f}x start-up  "
                  f"(target <= 10 s: {'met' if median <= 10 else 'MISSED'})")  # fmt: skip
    print(f"slowest profile: {worst:.2f} s; run from {ROOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
