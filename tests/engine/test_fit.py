"""End to end on the built-in cohort: fit, metrics, predictions, evaluate, predict, resume."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import fusiondx
from fusiondx.engine import task as task_module


def _fit(cfg: dict[str, Any], **kw: Any) -> Any:
    return fusiondx.fit(fusiondx.load_config(cfg), **kw)


@pytest.mark.parametrize(
    "fusion", ["concat", "early_concat", "late_average", "multimodal_transformer"]
)
def test_fit_writes_a_complete_run(quick_config: dict[str, Any], fusion: str) -> None:
    quick_config["fusion"]["name"] = fusion
    res = _fit(quick_config)
    run = res.run_dir
    for f in (
        "config.yaml",
        "preprocessing.json",
        "splits.csv",
        "model.pt",
        "metrics.json",
        "predictions.csv",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "logs/metrics.csv",
    ):
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]["diagnosis"]
    for k in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auroc",
        "auprc",
        "balanced_accuracy",
        "specificity",
        "sensitivity",
    ):
        assert 0.0 <= test[k] <= 1.0, k
    assert np.array(test["confusion_matrix"]).sum() == metrics["cases"]["test"]
    preds = pd.read_csv(run / "predictions.csv")
    assert set(preds["split"]) == {"val", "test"}
    assert preds["diagnosis_prob_disease"].between(0, 1).all()
    # every checkpoint artefact loads without unpickling arbitrary objects
    torch.load(run / "model.pt", weights_only=True)
    torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def test_no_case_in_two_splits_and_no_patient_either(quick_config: dict[str, Any]) -> None:
    res = _fit(quick_config)
    splits = pd.read_csv(res.run_dir / "splits.csv")
    manifest = pd.read_csv(quick_config["data"]["manifest"], dtype=str)
    joined = splits.merge(manifest[["case_id", "patient_id"]], on="case_id")
    assert joined.groupby("patient_id")["split"].nunique().max() == 1
    assert splits["case_id"].is_unique and len(splits) == len(manifest)


def test_same_seed_same_numbers(quick_config: dict[str, Any], tmp_path: Path) -> None:
    a = _fit(quick_config).metrics["test"]["diagnosis"]
    other = copy.deepcopy(quick_config)
    other["output_dir"] = str(tmp_path / "again")
    b = _fit(other).metrics["test"]["diagnosis"]
    assert a == b
    other["seed"] = 5
    other["output_dir"] = str(tmp_path / "seed5")
    c = _fit(other).metrics["test"]["diagnosis"]
    assert c["auroc"] != a["auroc"] or c["accuracy"] != a["accuracy"]


def test_evaluate_and_predict_reuse_the_fitted_preprocessing(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    res = _fit(quick_config)
    ev = fusiondx.evaluate(res.run_dir)
    assert ev.metrics["metrics"]["diagnosis"]["auroc"] == pytest.approx(
        res.metrics["test"]["diagnosis"]["auroc"], abs=1e-6
    )
    manifest = Path(quick_config["data"]["manifest"])
    new = pd.read_csv(manifest, dtype=str).head(20).drop(columns=["label"])
    new_path = manifest.parent / "new_cases.csv"
    new.to_csv(new_path, index=False)
    out = tmp_path / "preds.csv"
    frame = fusiondx.predict(res.run_dir, new_path, out)
    assert out.is_file() and len(frame) == 20
    assert list(frame["case_id"]) == list(new["case_id"])
    assert frame["diagnosis_pred"].isin(["healthy", "disease"]).all()


class _Interrupt(RuntimeError):
    pass


def test_resume_continues_from_the_last_checkpoint(
    quick_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick_config["train"]["epochs"] = 4
    original = task_module.FusionTask.on_train_epoch_start

    def crash_at_epoch_2(self: Any) -> None:
        if self.current_epoch == 2:
            raise _Interrupt("simulated power cut")
        original(self)

    monkeypatch.setattr(task_module.FusionTask, "on_train_epoch_start", crash_at_epoch_2)
    with pytest.raises(_Interrupt):
        _fit(quick_config)
    run = Path(quick_config["output_dir"]) / "quick"
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "metrics.json").exists()
    epoch_saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert epoch_saved == 1
    monkeypatch.setattr(task_module.FusionTask, "on_train_epoch_start", original)

    started: list[int] = []
    monkeypatch.setattr(
        task_module.FusionTask,
        "on_train_epoch_start",
        lambda self: started.append(self.current_epoch),
    )
    res = _fit(quick_config, resume=True)
    assert started == [2, 3]  # epochs 0 and 1 were not trained again
    assert res.metrics["epochs_run"] == 4
    curves = pd.read_csv(run / "logs" / "metrics.csv")
    assert set(curves["epoch"].dropna().astype(int)) == {0, 1, 2, 3}  # the curves survive resuming


def test_resume_without_a_checkpoint_is_a_clear_error(quick_config: dict[str, Any]) -> None:
    with pytest.raises(fusiondx.RunError, match="no checkpoint to resume"):
        _fit(quick_config, resume=True)


def test_modality_dropout_never_hides_every_modality() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(500, 4, generator=gen) > 0.3
    mask[:, 0] = True
    dropped = task_module.drop_modalities(mask, 0.9, gen)
    assert dropped.any(dim=1).all()
    assert not (dropped & ~mask).any()  # nothing absent becomes present
    assert dropped.sum() < mask.sum() * 0.5


def test_workers_and_augmentation_train(quick_config: dict[str, Any]) -> None:
    quick_config["train"]["num_workers"] = 2
    quick_config["train"]["epochs"] = 1
    quick_config["modalities"][0]["preprocessing"]["augment"] = {
        "flip": True,
        "rotate": 10,
        "scale": 0.1,
    }
    res = _fit(quick_config)
    assert 0.0 <= res.metrics["test"]["diagnosis"]["auroc"] <= 1.0
