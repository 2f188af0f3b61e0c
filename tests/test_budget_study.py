"""benchmarks/studies/budget_study.py: the epoch count every run of a time budget agrees on."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "studies"))
import budget_study  # noqa: E402

TIMED = budget_study.TIMED  # epochs trained before E is chosen


def record(sync, run, seconds, at):
    (sync / f"{run}.json").write_text(json.dumps({"seconds": seconds, "at": at}))


def test_every_run_gets_the_epochs_the_slowest_timed_epoch_fits(tmp_path):
    record(tmp_path, 0, 10.0, at=1000.0)
    record(tmp_path, 1, 20.0, at=1005.0)
    # 95 s left after the last record: 4 more epochs of the slowest run's 20 s
    assert budget_study.epochs_in_budget(tmp_path, 2, 1100.0, 1000) == (TIMED + 4, 20.0)
    assert budget_study.epochs_in_budget(tmp_path, 2, 1100.0, 3) == (3, 20.0)  # capped
    # no time left: one more epoch, so that the annealing has one to act on
    assert budget_study.epochs_in_budget(tmp_path, 2, 900.0, 1000) == (TIMED + 1, 20.0)


def test_a_run_that_never_records_does_not_hold_the_others(tmp_path):
    record(tmp_path, 0, 10.0, at=1000.0)
    # run 1 never records: after the timeout, 100 s / 10 s of run 0 alone
    assert budget_study.epochs_in_budget(tmp_path, 2, 1100.0, 1000, timeout=0.1) == (
        TIMED + 10, 10.0)


@pytest.mark.parametrize("argv, match", [
    (["--train-seconds", "10", '{"max_epochs": 5}'], "max_epochs"),
    (["--train-seconds", "10", '{"anneal_from": 5}'], "anneal_from"),
    (["--train-seconds", "10", '{"n_train_after": [1, 10]}'], "n_train_after"),
    (["--train-seconds", "0", "{}"], "--train-seconds"),
    (["--train-seconds", "10", "--max-epochs", str(TIMED), "{}"], "--max-epochs"),
])
def test_bad_arguments_name_what_to_fix(argv, match):
    with pytest.raises(ValueError, match=match):
        budget_study.parse_args(argv)
