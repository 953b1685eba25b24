"""Benchmark (b): wall time of the receiver-role and sender-role suites against the
reference, per profile.

Receiver: 10 s or less per profile without the slow checks. The baseline, measured in the
same run, is pytest's own start-up with this plugin loaded (one trivial test), so the ratio
says how much of the wall time is the suite's work rather than interpreter and import cost.

Sender: its scenarios run concurrently, so the suite should last about as long as its longest
scenario. The baseline is that scenario's own floor, from the profile: the attempt held until
the sender's timeout abandons it, the scaled retry that follows and the quiet watch after it,
plus the same pytest start-up; the ratio says what the suite adds to the waiting it must do.

    python bench/bench_suite.py [--rounds 3] [--with-slow] [--role receiver|sender]
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

from bench._targets import ROOT, free_port, running, wait_for_port
from conformance import list_profiles, load_profile
from conformance._engine.config import default_time_scale
from conformance.checks.sender._run import largest_delay

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
    parser.add_argument("--role", choices=("receiver", "sender"), action="append")
    args = parser.parse_args()
    roles = args.role or ["receiver", "sender"]
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
        if "sender" in roles:
            sender_suites(work, baseline, args.rounds)
        if "receiver" not in roles:
            return 0
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


def sender_floor(name: str) -> float:
    """The longest sender scenario's own length at the default time scale: the held attempt
    until the timeout, the scaled first retry, and the quiet watch after the last attempt."""
    profile = load_profile(name)
    policy = profile.delivery
    scale = default_time_scale(profile)
    retry = policy.schedule_seconds[1] * scale if policy.max_attempts > 1 else 0.0
    return policy.timeout_seconds + retry + largest_delay(policy, scale) * 1.25 + 0.3


def sender_suites(work: Path, baseline: float, rounds: int) -> None:
    """The sender suite against the reference sender, per profile."""
    for profile in list_profiles():
        times = []
        for _ in range(rounds):
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "conformance._cli", "serve", "sender", "--profile",
                 profile, "--port", str(port), "--db", str(work / f"{profile}-sender.sqlite3"),
                 "--allow-private-targets"], cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                wait_for_port(port)
                command = [
                    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--target-url=http://127.0.0.1:{port}/conformance/trigger",
                    f"--profile={profile}", "--role=sender",
                ]  # fmt: skip
                times.append(timed(command, work))
            finally:
                server.terminate()
                server.wait(10)
        median = statistics.median(times)
        floor = sender_floor(profile) + baseline
        print(f"{profile:17} sender suite {median:5.2f} s = {median / floor:4.2f}x its longest "
              f"scenario's floor + start-up ({floor:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
