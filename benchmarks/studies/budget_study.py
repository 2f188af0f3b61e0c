"""Several ``convergence_study.py`` runs side by side on one GPU, their epochs fitted
to a time budget: a larger training budget in a short lease of a GPU.

    python benchmarks/studies/budget_study.py --train-seconds 400 --log-dir logs \\
        '{"n_train": 48000, "device": "cuda"}' '{"n_train": 48000, "kind": "vae", "device": "cuda"}'

Each argument is a ``convergence_study.py`` configuration without ``max_epochs``,
``anneal_from`` and ``n_train_after``; each runs in its own process, all at once, its
output in ``<log-dir>/run<i>.log``. Every run trains two epochs and times the second
(the first also pays for the GPU's start-up while the other runs are still building
their sequences: about twice as long on an H200), then waits for the others; then all
train to the same number of epochs E: the most that the slowest second epoch fits into
what is left of ``--train-seconds`` (counted from the start, so building the sequences
counts too), at most ``--max-epochs``. The learning rate is kept for the first
round(2E/3) epochs and annealed to 0 by epoch E, as in the CPU runs (60 epochs annealed
from 40). sktvae continues the random stream, and skorch the schedule, when training
goes on, so each run is the plain ``convergence_study.py '{..., "max_epochs": E,
"anneal_from": round(2E/3)}'``; its log prints that command. The runs share the GPU, so
the slowest epoch is measured while all of them train. With a ``--train-seconds`` far
beyond what is needed, ``--max-epochs`` fixes E, and the runs repeat exactly.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skorch.callbacks import LRScheduler

from convergence_study import annealed, measure, setup

HERE = Path(__file__).resolve().parent
TIMED = 2  # epochs trained before E is chosen; the last of them is timed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="convergence_study.py configurations (JSON)")
    parser.add_argument("--train-seconds", type=float, required=True,
                        help="wall time from the start by which every run should have "
                             "finished training (the measurements come after)")
    parser.add_argument("--max-epochs", type=int, default=1000, help="at most this many")
    parser.add_argument("--log-dir", default=".")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sync-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for config in args.configs:
        keys = set(json.loads(config))
        given = {"max_epochs", "anneal_from"} & keys
        if given:
            raise ValueError(f"budget_study chooses {sorted(given)} itself; leave them out "
                             f"of the configuration {config}.")
        if "n_train_after" in keys:  # E is not known beforehand, so neither is the switch
            raise ValueError(f"budget_study trains every epoch on all n_train sequences; "
                             f"leave n_train_after out of the configuration {config}.")
    if args.train_seconds <= 0 or args.max_epochs < TIMED + 1:
        raise ValueError(f"--train-seconds must be positive and --max-epochs at least "
                         f"{TIMED + 1}.")
    return args


def epochs_in_budget(sync, n_runs, deadline, max_epochs, timeout=600):
    """Wait until ``n_runs`` epoch times are recorded in ``sync`` (or ``timeout``
    seconds: a run that failed does not hold the others), then the same E for every run:
    the ``TIMED`` epochs trained, plus as many of the slowest recorded one as fit between
    the last record and ``deadline`` (at least one more, at most ``max_epochs`` in all).
    Returns E and that slowest epoch's seconds."""
    stop = time.time() + timeout
    while len(list(sync.glob("*.json"))) < n_runs and time.time() < stop:
        time.sleep(0.5)
    records = [json.loads(p.read_text()) for p in sync.glob("*.json")]
    slowest = max(r["seconds"] for r in records)
    last = max(r["at"] for r in records)
    more = max(1, int((deadline - last) / slowest))
    return min(max_epochs, TIMED + more), slowest


def worker(args):
    config = json.loads(args.configs[args.worker])
    est, X_train, tests, kind, _ = setup(config)  # header without E, not yet known
    # Constant until E is known (after TIMED epochs), then annealed from round(2E/3) to E
    # (E > TIMED, so round(2E/3) >= TIMED: the epochs before E is known are not annealed).
    schedule = {"start": 1 << 30, "stop": (1 << 30) + 1}
    est.set_params(callbacks=est.callbacks + [LRScheduler(
        "LambdaLR", lr_lambda=lambda e: annealed(e, schedule["start"], schedule["stop"]))])
    start = time.perf_counter()
    est.set_params(warm_start=True, max_epochs=TIMED - 1).fit(X_train)
    timed = time.perf_counter()
    est.set_params(max_epochs=1).fit(X_train)
    epoch = time.perf_counter() - timed
    sync = Path(args.sync_dir)
    (sync / f"{args.worker}.json").write_text(json.dumps({"seconds": epoch, "at": time.time()}))
    epochs, slowest = epochs_in_budget(sync, len(args.configs), args.deadline, args.max_epochs)
    schedule.update(start=round(2 * epochs / 3), stop=epochs)
    plain = json.dumps(dict(config, max_epochs=epochs, anneal_from=schedule["start"]))
    print(f"  epoch {TIMED} took {epoch:.1f} s (slowest run {slowest:.1f} s): {epochs} epochs "
          f"in all, as convergence_study.py '{plain}'", flush=True)
    est.set_params(max_epochs=epochs - TIMED).fit(X_train)
    est.set_params(max_epochs=epochs)
    seconds = time.perf_counter() - start
    print(f"  fit {seconds:.0f} s, {len(X_train) * epochs * est.sequence_length / seconds:.0f} "
          "frames/s (with the per-epoch diagnostics, beside the other runs)", flush=True)
    measure(est, tests, kind)


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args)
    log_dir = Path(args.log_dir).resolve()  # the runs start in this script's folder
    log_dir.mkdir(parents=True, exist_ok=True)
    sync = tempfile.mkdtemp(prefix="budget_study_")  # the first epochs' times
    deadline = time.time() + args.train_seconds
    common = ["--deadline", str(deadline), "--train-seconds", str(args.train_seconds),
              "--max-epochs", str(args.max_epochs), "--log-dir", str(log_dir),
              "--sync-dir", sync, *args.configs]
    logs = [open(log_dir / f"run{i}.log", "w") for i in range(len(args.configs))]
    runs = [subprocess.Popen([sys.executable, "-u", str(HERE / "budget_study.py"),
                              "--worker", str(i), *common],
                             stdout=log, stderr=subprocess.STDOUT, cwd=HERE)
            for i, log in enumerate(logs)]
    codes = [run.wait() for run in runs]
    for log in logs:
        log.close()
    shutil.rmtree(sync)
    print("exit codes:", codes)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
