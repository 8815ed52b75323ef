"""How fast the command line answers when it has nothing to compute: --help, --version, an error.

Each command runs in a fresh process, side by side with two baselines in the same run: a bare
``python -c pass`` (the floor) and ``import bayesmix; bayesmix.fit`` (what an eager package
import would cost every command). Goal: ``bayesmix --help`` in <= 1.5 s.

    python benchmarks/cli_startup.py [--quick]

The last line is one JSON object: help_s, version_s, error_s, python_s, eager_import_s, goal_met.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 1.5


def timed(command: list[str], repeats: int, cwd: str) -> float:
    """Median wall time of ``command`` over ``repeats`` fresh processes (after one warm-up)."""
    subprocess.run(command, capture_output=True, cwd=cwd, check=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, cwd=cwd, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7 (about 30 s).")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    exe = Path(sys.executable)
    cli = [str(exe.with_name("bayesmix"))] if exe.with_name("bayesmix").exists() else [str(exe), "-m", "bayesmix.cli.main"]
    cases = {
        "python_s": [str(exe), "-c", "pass"],
        "help_s": [*cli, "--help"],
        "version_s": [*cli, "--version"],
        "error_s": [*cli, "fit", "missing.csv"],
        "eager_import_s": [str(exe), "-c", "import bayesmix; bayesmix.fit"],
    }
    with tempfile.TemporaryDirectory() as folder:
        results = {name: timed(command, repeats, folder) for name, command in cases.items()}
    load = os.getloadavg()[0]
    print(f"median of {repeats} fresh processes each; load average {load:.2f}; {os.cpu_count()} cores")
    print(f"{'case':<34}{'seconds':>10}")
    labels = {
        "python_s": "python -c pass (floor)",
        "help_s": "bayesmix --help",
        "version_s": "bayesmix --version",
        "error_s": "bayesmix fit missing.csv (error)",
        "eager_import_s": "import bayesmix; bayesmix.fit",
    }
    for name, label in labels.items():
        print(f"{label:<34}{results[name]:>10.2f}")
    met = results["help_s"] <= GOAL_S
    print(f"goal: --help <= {GOAL_S} s: {'met' if met else 'MISSED'}")
    print(json.dumps({**{k: round(v, 3) for k, v in results.items()}, "load_average": round(load, 2), "goal_met": met}))


if __name__ == "__main__":
    main()
