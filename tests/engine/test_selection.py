"""Which epoch a run keeps and when it stops: the metric first, validation loss on ties, never a
silent switch of what is monitored."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fusiondx.engine.selection import BestEpoch


class _Trainer:
    """What BestEpoch reads and writes of a Lightning Trainer."""

    def __init__(self) -> None:
        self.callback_metrics: dict[str, float] = {}
        self.current_epoch = 0
        self.sanity_checking = False
        self.should_stop = False
        self.saved: list[tuple[int, str]] = []

    def save_checkpoint(self, path: Path) -> None:
        self.saved.append((self.current_epoch, Path(path).name))


def _run(cb: BestEpoch, epochs: list[tuple[float, float]]) -> _Trainer:
    tr = _Trainer()
    for epoch, (value, loss) in enumerate(epochs):
        tr.current_epoch = epoch
        tr.callback_metrics = {"val/bleu4": value, "val/loss": loss}
        cb.on_validation_end(tr, None)  # type: ignore[arg-type]
        if tr.should_stop:
            break
    return tr


def _cb(tmp_path: Path, patience: int | None = 3, mode: str = "max") -> BestEpoch:
    return BestEpoch(tmp_path / "best.ckpt", tmp_path / "last.ckpt", "val/bleu4", mode, patience)


def test_a_flat_metric_with_a_falling_loss_keeps_training_and_keeps_the_later_epoch(
    tmp_path: Path,
) -> None:
    # Greedy decoding writes the most common findings for the first epochs: BLEU is flat while
    # the loss falls. Lightning's callbacks kept epoch 0 and stopped at epoch 3 here.
    cb = _cb(tmp_path)
    tr = _run(
        cb,
        [
            (0.70, 0.30),
            (0.70, 0.25),
            (0.70, 0.20),
            (0.70, 0.15),
            (0.80, 0.12),
            (0.79, 0.13),
            (0.78, 0.14),
            (0.78, 0.15),
            (0.90, 0.10),
        ],
    )
    assert cb.best_epoch == 4 and tr.current_epoch == 7 and tr.should_stop
    # Checkpoints are written under a temporary name, then renamed.
    assert [e for e, name in tr.saved if "best.ckpt" in name] == [0, 1, 2, 3, 4]
    assert [e for e, name in tr.saved if "last.ckpt" in name] == list(range(8))


def test_the_metric_decides_before_the_loss(tmp_path: Path) -> None:
    cb = _cb(tmp_path, patience=None)
    _run(cb, [(0.5, 0.3), (0.6, 0.9), (0.55, 0.1)])
    assert cb.best_epoch == 1  # a better metric wins even with a worse loss
    cb = _cb(tmp_path, patience=None, mode="min")
    _run(cb, [(0.5, 0.3), (0.4, 0.9), (0.45, 0.1)])
    assert cb.best_epoch == 1


def test_an_undefined_metric_is_judged_by_its_loss_and_counted(tmp_path: Path) -> None:
    cb = _cb(tmp_path, patience=None)
    _run(cb, [(math.nan, 0.5), (math.nan, 0.4), (math.nan, 0.45)])
    assert cb.best_epoch == 1 and cb.undefined_epochs == 3


def test_state_survives_a_resume(tmp_path: Path) -> None:
    cb = _cb(tmp_path)
    _run(cb, [(0.5, 0.3), (0.4, 0.2), (0.4, 0.25)])
    again = _cb(tmp_path)
    again.load_state_dict(cb.state_dict())
    assert (again.best_epoch, again.wait, again.best_value) == (0, 2, 0.5)


def test_fit_records_what_it_monitored(quick_config: dict[str, Any]) -> None:
    import fusiondx

    quick_config["train"].update(epochs=3, early_stopping={"patience": 2})
    res = fusiondx.fit(quick_config)
    sel = res.metrics["selection"]
    assert sel == {"monitor": "val/auroc", "mode": "max", "ties": "val/loss", "undefined_epochs": 0}
    assert (res.run_dir / "checkpoints" / "best.ckpt").is_file() and (
        res.run_dir / "checkpoints" / "last.ckpt"
    ).is_file()
    assert not list(res.run_dir.rglob("epoch=*.ckpt"))  # no stray Lightning checkpoints


def test_a_validation_split_with_one_class_is_refused_not_trained(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    import fusiondx

    manifest = pd.read_csv(quick_config["data"]["manifest"], dtype=str)
    split = pd.Series("train", index=manifest.index)
    healthy = manifest.index[manifest["label"] == "healthy"]
    split[healthy[:20]] = "val"  # only healthy cases in val
    split[manifest.index[-30:]] = "test"
    manifest["split"] = split
    path = tmp_path / "fixed.csv"
    manifest.to_csv(path, index=False)
    root = str(Path(quick_config["data"]["manifest"]).parent)
    quick_config["data"] = {"manifest": str(path), "root": root, "split": {"column": "split"}}
    with pytest.raises(
        fusiondx.DataError, match="validation split of task 'diagnosis' holds a single class"
    ) as info:
        fusiondx.fit(quick_config)
    assert "'disease' 0" in str(info.value) and "monitor: loss" in str(info.value)
    quick_config["train"]["early_stopping"] = {"monitor": "loss"}
    assert fusiondx.fit(quick_config).metrics["selection"]["monitor"] == "val/loss"
