"""A real active-learning loop on bayesmix's own proxies, killed once mid-batch and resumed.

A project on the embedded corpus (the quickstart's 4 domains, one proxy size ``cpu-xs``, objective
the mean validation loss) trains a space-filling initial design, then ``bayesmix loop`` drives
``--batches`` designer batches through the **submitit local executor** (each run a subprocess
that outlives the loop). While a designer batch is in flight the loop is killed with SIGKILL;
the same command is run again and must re-attach to the running jobs, finish every batch, and
train nothing twice. The designer's surrogate is its default (the Bayesian mixing law, refitted
warm, once the runs suffice for the law).

Reported: wall time per phase, runs per batch, every run's trained count (from submitit's result
files: a job that skipped a finished run does not count), the ledger's finished runs, the best
observed objective after each batch and the loop's own report.

Usage: ``python benchmarks/real_loop.py [--out DIR] [--steps 150] [--batches 3] [--batch-size 4]
[--initial 8] [--kill-batch 2]``; ``--quick`` (about 5 minutes): 60 steps, 6 initial runs, 3
batches of 2. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _common import machine, print_json, print_table

from bayesmix.cli.workflow import QUICKSTART_SETTINGS
from bayesmix.project import Project
from bayesmix.project import steps as project_steps
from bayesmix.project.loop import loop_state_path, read_state


def bayesmix_command() -> str:
    return str(Path(sys.executable).with_name("bayesmix"))


def trained_counts(jobs: Path) -> Counter:
    """Runs trained to the end per submitit result file (skips of a finished run not counted)."""
    counts: Counter = Counter()
    for path in jobs.glob("*/*_result.pkl"):
        with open(path, "rb") as fh:  # written by this benchmark's own jobs, in this folder
            kind, value = pickle.load(fh)
        if kind == "success" and isinstance(value, dict) and not value.get("skipped"):
            counts[value["run"]] += 1
    return counts


def objective_by_batch(project: Project, batches: list[list[str]]) -> list[float]:
    """Best observed objective (mean validation loss, nats/token) after the initial design and each batch."""
    table = project.study.ledger.to_long_table()
    final = table[table.step == table.groupby("run").step.transform("max")]
    mean = final.groupby("run").loss.mean()
    looped = {run for batch in batches for run in batch}
    seen = [r for r in mean.index if r not in looped]
    best = [float(mean[seen].min())]
    for batch in batches:
        seen += [r for r in batch if r in mean.index]
        best.append(float(mean[seen].min()))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/bayesmix-real-loop"))
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--initial", type=int, default=8)
    p.add_argument("--batches", type=int, default=3, help="designer batches after the initial design")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--kill-batch", type=int, default=2, help="the designer batch in flight when the loop is killed")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.steps, args.initial, args.batch_size = 60, 6, 2
    if args.out.exists():
        shutil.rmtree(args.out)
    print(f"Real loop on {machine()}; load average {os.getloadavg()[0]:.1f}; {args.initial} initial runs, "
          f"{args.batches} batches of {args.batch_size}, {args.steps} steps, kill during batch {args.kill_batch}")
    settings = json.loads(json.dumps(QUICKSTART_SETTINGS))
    settings["project"].update({"sizes": ["cpu-xs"], "steps": args.steps, "n_mixtures": args.initial,
                                "n_suggest": args.batch_size})
    project = Project.create(args.out, settings)
    times: dict[str, float] = {}

    started = time.perf_counter()
    report = project_steps.train(project, project_steps.initial_plan(project), workers=2)
    times["initial_s"] = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"initial design: {len(report.failed)} runs failed")

    # the loop counts the initial design as its first batch only if it asked it: it did not
    total = args.batches
    command = [bayesmix_command(), "loop", str(project.folder), "--batches", str(total), "--batch-size",
               str(args.batch_size), "--executor", "submitit", "--cluster", "local", "--threads", "1",
               "--poll-s", "1", "--timeout-min", "60"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    state_path = loop_state_path(project)
    started = time.perf_counter()
    with open(args.out / "loop_first.log", "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        killed_in = None
        while child.poll() is None:
            state = read_state(state_path) if state_path.exists() else {"batches": [], "runs": {}}
            batches = state["batches"]
            if len(batches) >= args.kill_batch:
                runs = [state["runs"][k] for k in batches[args.kill_batch - 1]]
                if runs and all(e["handle"] for e in runs):  # the batch's jobs are submitted
                    time.sleep(5.0)  # let them train a little
                    state = read_state(state_path)
                    running = any(state["runs"][k]["status"] == "submitted" for k in batches[args.kill_batch - 1])
                    if running and child.poll() is None:
                        child.send_signal(signal.SIGKILL)
                        child.wait()
                        killed_in = len(state["batches"])
                        break
            time.sleep(0.5)
    times["first_loop_s"] = time.perf_counter() - started
    if killed_in is None or child.returncode != -signal.SIGKILL:
        raise SystemExit(f"the loop ended (exit {child.returncode}) before batch {args.kill_batch}: "
                         f"see {args.out / 'loop_first.log'}")
    state = read_state(state_path)
    in_flight_at_kill = sum(e["status"] in ("queued", "submitted", "held") for e in state["runs"].values())
    print(f"killed the loop with {killed_in} batches asked and {in_flight_at_kill} runs in flight")

    started = time.perf_counter()
    with open(args.out / "loop_second.log", "wb") as log:
        done = subprocess.run([*command, "--json"], stdout=subprocess.PIPE, stderr=log, env=env, check=False,
                              timeout=3600)
    times["resumed_loop_s"] = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the resumed loop failed (exit {done.returncode}): see {args.out / 'loop_second.log'}")
    loop = json.loads(done.stdout)

    state = read_state(state_path)
    looped = [k for batch in state["batches"] for k in batch]
    ledger_finished = {r.id for r in project.study.ledger.runs("finished")}
    counts = trained_counts(project.folder / "jobs" / "submitit")
    trained_twice = sorted(r for r, c in counts.items() if c > 1)
    never_trained = sorted(r for r in looped if counts.get(r, 0) == 0)
    lost = sorted((set(looped) - ledger_finished) | set(never_trained))
    best = objective_by_batch(project, state["batches"])
    rows = [{"after": "initial design" if i == 0 else f"batch {i}",
             "runs": args.initial if i == 0 else len(state["batches"][i - 1]), "best mean loss": b}
            for i, b in enumerate(best)]
    print_table(rows, ["after", "runs", "best mean loss"], "Best observed objective (mean validation loss, nats/token)")
    print(f"resumed loop: re-attached {len(loop['reattached'])}, resubmitted {len(loop['resubmitted'])}, "
          f"failed {len(loop['failed'])}; trained twice {trained_twice}; never trained {never_trained}; "
          f"lost (not finished in the ledger, or never trained) {lost}")
    print_json({
        "batches": len(state["batches"]),
        "looped_runs": len(looped),
        "finished_in_ledger": len(ledger_finished),
        "killed_with_batches_asked": killed_in,
        "in_flight_at_kill": in_flight_at_kill,
        "reattached": len(loop["reattached"]),
        "resubmitted": len(loop["resubmitted"]),
        "trained_twice": len(trained_twice),
        "lost": len(lost),
        "failed": len(loop["failed"]),
        "best_mean_loss_by_batch": best,
        "improved": bool(best[-1] < best[0] - 1e-9),
        "steps": args.steps,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "load_average": round(os.getloadavg()[0], 2),
        "ok": (not trained_twice and not lost and not loop["failed"] and len(state["batches"]) == total
               and in_flight_at_kill > 0 and len(loop["reattached"]) > 0),
        "mean_runs_per_batch": float(np.mean([len(b) for b in state["batches"]])),
    })


if __name__ == "__main__":
    main()
