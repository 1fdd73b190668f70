"""A trained run's folder as an API: its files by name, and what can be read back from them.

``runs/<name>/`` holds::

    config.yaml          the resolved config (absolute paths)
    requested.yaml       the config as given, when the small-data policy changed it
    preprocessing.json   what was fitted on the training split (tokenizer, statistics, classes)
    splits.csv           case_id -> train / val / test
    checkpoints/         best.ckpt and last.ckpt (Lightning; `fit --resume` continues from last)
    model.pt             the best weights as a plain state_dict (loaded with weights_only=True)
    metrics.json         validation and test metrics, epochs, timing
    predictions.csv      per-case probabilities and predictions on val and test
    posthoc.json         calibration, decision thresholds and conformal sets fitted on val
    logs/metrics.csv     training curves
    evaluations/         what `fusiondx evaluate` wrote
    model.onnx           what `fusiondx export` wrote (by default)
    MODEL_CARD.md        the model card `fusiondx export` writes beside model.onnx
    model.int8.onnx      what `fusiondx export --int8` kept (by default)
    int8.json            the int8 model's size, latency and test metric against the float one
    error.txt            why a study's training of this run failed

Everything that reads or writes these files goes through here (or :class:`RunDir`'s paths);
:mod:`fusiondx.engine.runfolder` is the folder as a place on disk (locks, what may be replaced).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.config import Config, load_config
from fusiondx.data.store import CaseStore, Prepared
from fusiondx.engine import runfolder
from fusiondx.engine.checkpoints import REPAIR, load_weights
from fusiondx.errors import DataError, RunError
from fusiondx.models.build import build_model
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo
from fusiondx.types import ModalitySpec


@dataclass(frozen=True)
class RunDir:
    """The files of one run folder, by what they hold (see the module docstring).

    Args:
        path: the run folder, ``<output_dir>/<name>``.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_file(self) -> Path:
        """``config.yaml``: the config that trained, paths made absolute."""
        return self.path / "config.yaml"

    @property
    def requested_file(self) -> Path:
        """``requested.yaml``: the config as given, when the small-data policy changed it."""
        return self.path / "requested.yaml"

    @property
    def preprocessing_file(self) -> Path:
        """``preprocessing.json``: specs, tasks and class weights fitted on the training split."""
        return self.path / "preprocessing.json"

    @property
    def splits_file(self) -> Path:
        """``splits.csv``: case_id -> train / val / test."""
        return self.path / "splits.csv"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: Lightning checkpoints."""
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        """``checkpoints/best.ckpt``: the epoch the run keeps."""
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        """``checkpoints/last.ckpt``: the last finished epoch, what ``--resume`` continues from."""
        return self.checkpoints / "last.ckpt"

    @property
    def weights_file(self) -> Path:
        """``model.pt``: the kept weights as a plain state_dict."""
        return self.path / "model.pt"

    @property
    def metrics_file(self) -> Path:
        """``metrics.json``: written last; a run that has it is finished."""
        return self.path / "metrics.json"

    @property
    def predictions_file(self) -> Path:
        """``predictions.csv``: per-case predictions on val and test."""
        return self.path / "predictions.csv"

    @property
    def posthoc_file(self) -> Path:
        """``posthoc.json``: calibration, thresholds and conformal sets fitted on validation."""
        return self.path / "posthoc.json"

    @property
    def curves_file(self) -> Path:
        """``logs/metrics.csv``: one row of training curves per epoch."""
        return self.path / "logs" / "metrics.csv"

    @property
    def evaluations(self) -> Path:
        """``evaluations/``: what ``fusiondx evaluate`` wrote."""
        return self.path / "evaluations"

    @property
    def error_file(self) -> Path:
        """``error.txt``: why a study's training of this run failed."""
        return self.path / "error.txt"

    @property
    def onnx_file(self) -> Path:
        """``model.onnx``: where ``fusiondx export`` writes by default."""
        return self.path / "model.onnx"

    @property
    def model_card_file(self) -> Path:
        """``MODEL_CARD.md``: the model card ``fusiondx export`` writes beside ``model.onnx``."""
        return self.path / "MODEL_CARD.md"

    @property
    def int8_file(self) -> Path:
        """``int8.json``: sizes, latency and test metrics of ``fusiondx export --int8``."""
        return self.path / "int8.json"

    @property
    def int8_onnx_file(self) -> Path:
        """``model.int8.onnx``: the int8 model ``fusiondx export --int8`` keeps by default."""
        return self.path / "model.int8.onnx"

    @property
    def distillation_file(self) -> Path:
        """``distillation.json``: the teacher a distilled run learns from (what ``--resume``
        scores again to continue with it)."""
        return self.path / "distillation.json"

    @property
    def encoders_file(self) -> Path:
        """``encoders.pt``: what ``fusiondx pretrain`` leaves for ``fit`` (``encoder.init``)."""
        return self.path / "encoders.pt"

    @property
    def retrieval_file(self) -> Path:
        """``retrieval.json``: a pretraining run's retrieval scores on its test cases."""
        return self.path / "retrieval.json"

    @property
    def finished(self) -> bool:
        """Whether training ended (``metrics.json`` is written last)."""
        return self.metrics_file.is_file()

    def config(self) -> Config:
        """The config the run trained with."""
        self._require(self.config_file)
        return load_config(self.config_file)

    def preprocessing(self) -> dict[str, Any]:
        """``preprocessing.json``: what :func:`fusiondx.data.store.prepare_with_state` needs."""
        self._require(self.preprocessing_file)
        try:
            return json.loads(self.preprocessing_file.read_text())
        except ValueError:  # a cut-off or overwritten file (UnicodeDecodeError is one too)
            raise RunError(
                "The run's preprocessing.json is not valid JSON: it is damaged or truncated.",
                file=self.preprocessing_file,
                fix=REPAIR,
            ) from None

    def posthoc(self) -> dict[str, Any] | None:
        """``posthoc.json`` (None for a run written before it existed, or a non-classifier)."""
        if not self.posthoc_file.is_file():
            return None
        try:
            return json.loads(self.posthoc_file.read_text())
        except ValueError:
            raise RunError(
                "The run's posthoc.json is not valid JSON: it is damaged or truncated.",
                file=self.posthoc_file,
                fix=REPAIR,
            ) from None

    def splits(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """The saved split of each case id, in order; a :class:`DataError` names a case not saved."""
        saved = pd.read_csv(self.splits_file, dtype=str).set_index("case_id")["split"]
        missing = [i for i in ids if i not in saved.index]
        if missing:
            raise DataError(
                f"{len(missing)} case(s) of the manifest are not in the run's splits.csv.",
                case_id=missing[0],
                file=self.splits_file,
                fix="the manifest changed since training; evaluate it with --data instead",
            )
        return saved.loc[list(ids)].to_numpy().astype(str)

    def load(self) -> tuple[Config, MultimodalModel, dict[str, Any]]:
        """The config, the trained model (eval mode) and the preprocessing state.

        The weights are loaded with ``weights_only=True`` after checking they fit the model the
        config describes.
        """
        for f in (self.config_file, self.preprocessing_file, self.weights_file):
            self._require(f)
        cfg = self.config()
        state = self.preprocessing()
        specs = {m: ModalitySpec.from_dict(s) for m, s in state["specs"].items()}
        tasks = [TaskInfo.from_dict(t) for t in state["tasks"]]
        model = build_model(cfg, specs, tasks, state.get("class_weights"))
        load_weights(model, self.weights_file)
        model.eval()
        return cfg, model, state

    def write_inputs(
        self, cfg: Config, prepared: Prepared, class_weights: dict[str, list[float] | None]
    ) -> None:
        """Write config.yaml, preprocessing.json and splits.csv: what a trained model is read back with.

        Rewritten on ``--resume`` too; each whole or not at all, so a kill here cannot break the
        next resume.
        """
        write_text(self.config_file, cfg.to_yaml())
        write_json(self.preprocessing_file, prepared.state() | {"class_weights": class_weights})
        write_text(
            self.splits_file,
            pd.DataFrame({"case_id": prepared.store.ids, "split": prepared.store.split}).to_csv(
                index=False
            ),
        )

    def _require(self, path: Path) -> None:
        if not path.is_file():
            raise RunError(
                f"The run directory has no {path.name}.",
                file=path,
                fix="point at a folder written by `fusiondx fit` that finished training",
            )


def load_run(run_dir: Path) -> tuple[Config, MultimodalModel, dict[str, Any]]:
    """Rebuild a trained model from its run directory: ``RunDir(run_dir).load()``."""
    return RunDir(run_dir).load()


def saved_splits(run_dir: Path, store: CaseStore) -> np.ndarray:
    """The run's saved split of each case of ``store``, in the store's order."""
    return RunDir(run_dir).splits(store.ids)


def check_same_splits(run_dir: Path, store: CaseStore) -> None:
    """Raise a :class:`RunError` unless the store splits its cases as the run saved them (resume)."""
    if not np.array_equal(saved_splits(run_dir, store), store.split):
        raise RunError(
            "The data or split settings changed since this run started, so it cannot be resumed.",
            file=RunDir(run_dir).splits_file,
            fix="run `fusiondx fit --overwrite` (without --resume) to start over",
        )


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, whole or not at all; NaN and infinities become null."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    write_text(path, json.dumps(clean(obj), indent=2))


def write_text(path: Path, text: str) -> None:
    """Write a file whole or not at all: a killed process never leaves a half-written one."""
    runfolder.write_whole(path, lambda tmp: tmp.write_text(text))
