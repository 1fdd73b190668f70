"""`fusiondx search --workers N`: worker processes sharing one Optuna study through its storage."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import optuna
import pytest
from rich.console import Console

from fusiondx.config import load_config
from fusiondx.errors import ConfigError
from fusiondx.study.search import run_search
from fusiondx.study.search_workers import journal_path, open_storage, split_trials


def test_trials_are_shared_out_exactly() -> None:
    assert split_trials(5, 2) == [3, 2] and split_trials(1, 3) == [1, 0, 0]
    assert all(sum(split_trials(t, w)) == t for t in range(12) for w in range(1, 5))


def test_storage_strings_pick_the_journal_or_a_database(tmp_path: Path) -> None:
    assert journal_path(f"journal://{tmp_path}/a.journal") == tmp_path / "a.journal"
    assert journal_path(str(tmp_path / "s.log")) == tmp_path / "s.log"
    assert journal_path("sqlite:///x.db") is None and journal_path("postgresql://h/db") is None
    assert isinstance(open_storage(str(tmp_path / "s.journal")), optuna.storages.JournalStorage)
    with pytest.raises(ConfigError, match="names no file"):
        open_storage("journal://")


def test_bad_worker_count_is_a_clear_error(quick_config: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--workers 0"):
        run_search(load_config(quick_config), tmp_path, trials=2, workers=0, progress=False)


def test_two_workers_run_every_trial_once(quick_config: dict[str, Any], tmp_path: Path) -> None:
    raw = copy.deepcopy(quick_config)
    raw["modalities"] = [m for m in raw["modalities"] if m["name"] in ("report", "labs")]
    raw["train"]["epochs"] = 1
    raw["study"] = {"strategies": ["concat", "attention"], "seeds": 1, "ablation": False}
    out = io.StringIO()
    study, refit = run_search(
        load_config(raw),
        tmp_path / "s",
        trials=3,
        workers=2,
        refit=False,
        console=Console(file=out, width=200),
    )
    assert refit is None and (tmp_path / "s" / "search.journal").is_file()
    trials = study.trials
    assert sorted(t.number for t in trials) == [0, 1, 2]  # 3 = --trials, numbered once each
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}  # both processes took trials
    runs = [Path(t.user_attrs["run_dir"]) for t in trials]
    assert len(set(runs)) == 3 and all((r / "metrics.json").is_file() for r in runs)
    text = out.getvalue()
    assert "on 2 worker processes" in text
    assert text.count("Best trial") == 1 and f"Best trial {study.best_trial.number}:" in text
