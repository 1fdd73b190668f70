"""`fusiondx search`: Optuna trials on validation data, stored so a rerun adds to the same search."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import optuna
import pytest

from fusiondx.config import load_config
from fusiondx.errors import ConfigError
from fusiondx.study.search import run_search


def _cfg(quick_config: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(quick_config)
    cfg["train"]["epochs"] = 2
    cfg["study"] = {
        "strategies": ["concat", "attention"],
        "seeds": 1,
        "n_boot": 100,
        "ablation": False,
        "robustness": False,
    }
    return cfg


@pytest.mark.slow
def test_search_stores_trials_and_refits_the_best(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = load_config(_cfg(quick_config))
    study, result = run_search(cfg, tmp_path / "s", trials=3, progress=False)
    assert (tmp_path / "s" / "search.db").is_file()
    done = [t for t in study.trials if t.value is not None]
    assert done and all(0.0 <= t.value <= 1.0 for t in done)
    assert {t.params["fusion"] for t in study.trials} <= {"concat", "attention"}
    best = study.best_trial
    # the refit reports the tuned entry beside the untuned strategy and the baselines
    ids = {e["id"] for e in result.results["entries"]}
    assert f"tuned_{best.params['fusion']}" in ids and f"fusion_{best.params['fusion']}" in ids
    assert {"single_cxr", "single_ecg", "single_labs", "single_report"} <= ids
    tuned = load_config(
        Path(
            next(e for e in result.results["entries"] if e["id"].startswith("tuned_"))["runs"][0][
                "run_dir"
            ]
        )
        / "config.yaml"
    )
    assert tuned.train.lr == pytest.approx(best.params["lr"])
    assert tuned.fusion.dim == best.params["dim"]
    # the same storage continues the same search
    before = len(study.trials)
    again, _ = run_search(cfg, tmp_path / "s", trials=1, refit=False, progress=False)
    assert before == 3 and len(again.trials) == before + 1


def test_pruned_trials_stop_early(quick_config: dict[str, Any], tmp_path: Path) -> None:
    raw = _cfg(quick_config)
    raw["train"]["epochs"] = 4
    cfg = load_config(raw)
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    # Seed the storage with strong finished trials so a weak new one is pruned at its warm-up end.
    seeded = optuna.create_study(study_name=cfg.name, storage=storage, direction="maximize")
    for _ in range(6):
        t = seeded.ask()
        for step in range(4):
            t.report(1.0, step)
        seeded.tell(t, 1.0)
    study, _ = run_search(
        cfg, tmp_path / "p", trials=1, storage=storage, refit=False, progress=False
    )
    assert study.trials[-1].state == optuna.trial.TrialState.PRUNED


def test_bad_storage_url_is_a_clear_error(quick_config: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="search storage"):
        run_search(
            load_config(_cfg(quick_config)),
            tmp_path,
            trials=1,
            storage="nosuchdb://x",
            progress=False,
        )
