"""The engine's public parts: extra callbacks in fit, the run-folder API, the data module, the curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

import fusiondx
from fusiondx.data.dataset import EpochShuffle
from fusiondx.data.store import prepare
from fusiondx.engine import runfolder
from fusiondx.engine.curves import TrainingCurves, append_curve
from fusiondx.engine.datamodule import INFERENCE_BATCH, CaseDataModule
from fusiondx.engine.rundir import RunDir, saved_splits, write_json
from fusiondx.errors import DataError, RunError
from fusiondx.models.multimodal import FeatureFusion


class StopAfter(L.Callback):
    """Records each epoch's validation loss and stops the training after ``epochs`` epochs."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.losses: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.losses.append((trainer.current_epoch, float(trainer.callback_metrics["val/loss"])))
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def test_extra_callbacks_see_every_epoch_and_can_stop_the_training(
    quick_config: dict[str, Any],
) -> None:
    quick_config["train"]["epochs"] = 4
    hook = StopAfter(2)
    res = fusiondx.fit(quick_config, callbacks=[hook])
    assert [e for e, _ in hook.losses] == [0, 1]
    assert res.metrics["epochs_run"] == 2
    run = RunDir(res.run_dir)
    curves = pd.read_csv(run.curves_file)
    assert curves["epoch"].tolist() == [0, 1]
    assert np.allclose(curves["val/loss"], [loss for _, loss in hook.losses], rtol=1e-6)

    # The run folder reads back through its API.
    assert run.finished and run.config().name == "quick"
    cfg, model, state = run.load()
    assert isinstance(model, FeatureFusion) and not model.training
    assert [t["name"] for t in state["tasks"]] == ["diagnosis"]
    saved = pd.read_csv(run.splits_file)
    assert len(saved) == 160
    store = SimpleNamespace(ids=saved["case_id"].to_numpy()[::-1])
    assert (saved_splits(run.path, store) == saved["split"].to_numpy()[::-1]).all()  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not in the run's splits.csv") as err:
        run.splits([*store.ids[:3], "no-such-case"])
    assert "no-such-case" in str(err.value)
    run.preprocessing_file.write_text('{"specs": ')
    with pytest.raises(RunError, match="preprocessing.json is not valid JSON"):
        run.load()
    run.weights_file.unlink()
    with pytest.raises(RunError, match="has no model.pt"):
        run.load()


def test_every_run_file_is_one_the_run_folder_may_replace(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    files = [
        getattr(run, name)
        for name in dir(RunDir)
        if isinstance(getattr(RunDir, name), property) and name != "finished"
    ]
    # Every file a run writes has its path here, and only those: clear_run replaces exactly these.
    assert {f.relative_to(run.path).parts[0] for f in files} == set(runfolder.RUN_FILES) - {
        runfolder.LOCK
    }


def test_write_json_is_whole_and_writes_nan_as_null(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json(path, {"a": math.nan, "b": [1.0, math.inf], "c": {"d": 2}})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 2}}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left behind


@pytest.fixture(scope="module")
def prepared(cohort_dir: Path) -> Any:
    from tests.conftest import QUICK

    cfg = fusiondx.load_config(
        {**QUICK, "data": {**QUICK["data"], "manifest": str(cohort_dir / "manifest.csv")}}
    )
    return cfg, prepare(cfg)


def test_the_data_module_serves_each_split_as_fit_and_evaluate_use_it(prepared: Any) -> None:
    cfg, p = prepared
    store = p.store
    data = CaseDataModule.from_config(cfg, store)
    train = store.indices("train")
    loader = data.train_dataloader()
    order = EpochShuffle(len(train), cfg.seed)
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        order.set_epoch(epoch)
        served = np.concatenate([b["index"].numpy() for b in loader])
        assert (served == train[list(order)]).all()  # the shuffle a resumed run replays
        assert max(len(b["case_id"]) for b in loader) == cfg.train.batch_size
    for split, batches in (("val", data.val_dataloader()), ("test", data.test_dataloader())):
        got = [b["index"].numpy() for b in batches]
        assert (np.concatenate(got) == store.indices(split)).all()
    n_val = len(store.indices("val"))
    # Validation trains nothing: inference-sized batches, like test and predict.
    assert len(next(iter(data.val_dataloader()))["case_id"]) == min(n_val, INFERENCE_BATCH)
    assert data.inference_batch_size == max(cfg.train.batch_size, INFERENCE_BATCH)
    every = np.concatenate([b["index"].numpy() for b in data.predict_dataloader()])
    assert (every == np.arange(len(store))).all()
    assert data.augment == {}  # none configured


def test_training_curves_replace_the_epochs_a_resume_trains_again(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "metrics.csv"
    curves = TrainingCurves(path)
    module = SimpleNamespace(epoch_metrics={"epoch": 0, "val/loss": 1.0})
    curves.on_validation_end(SimpleNamespace(sanity_checking=True), module)  # type: ignore[arg-type]
    assert not path.exists()
    for e in range(3):
        module.epoch_metrics = {"epoch": e, "val/loss": 1.0 - e / 10}
        curves.on_validation_end(SimpleNamespace(sanity_checking=False), module)  # type: ignore[arg-type]
    append_curve(path, {"epoch": 1, "val/loss": 0.5})  # resumed from epoch 0's checkpoint
    frame = pd.read_csv(path)
    assert frame["epoch"].tolist() == [0, 1] and frame["val/loss"].tolist() == [1.0, 0.5]
    module.epoch_metrics = None  # a validation without cases writes nothing
    curves.on_validation_end(SimpleNamespace(sanity_checking=False), module)  # type: ignore[arg-type]
    assert len(pd.read_csv(path)) == 2


def test_inference_batches_are_whole_slices_of_the_store(prepared: Any) -> None:
    from fusiondx.engine.inference import loader_outputs, predict_outputs
    from fusiondx.models.build import build_model

    cfg, prepared = prepared
    torch.manual_seed(0)
    model = build_model(cfg, prepared.specs, prepared.tasks)
    idx = prepared.store.indices("test")
    hidden = torch.zeros(len(idx), len(prepared.store.modalities), dtype=torch.bool)
    hidden[:, 0] = True  # every case shows only its first modality
    a = predict_outputs(model, prepared.store, idx, 4, mask=hidden)["diagnosis"]
    b = loader_outputs(
        model, CaseDataModule.from_config(cfg, prepared.store).inference_loader(idx), mask=hidden
    )["diagnosis"]
    assert a.shape == (len(idx), 1) and torch.equal(a, b)
    assert not torch.equal(a, predict_outputs(model, prepared.store, idx, 4)["diagnosis"])
