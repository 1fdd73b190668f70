"""``fusiondx pretrain``: self-supervised training of the configured encoders, labels optional.

Every case of the manifest takes part, labelled or not. The split is the one ``fit`` makes of
the labelled cases (same seed, strata and patient groups), so that fine-tuning on them later
tests on cases pretraining never saw; unlabelled cases all train. Preprocessing is fitted on the
training cases, the encoders and objectives trained on them, the epoch with the lowest
validation loss kept. The run folder then holds ``encoders.pt`` (:mod:`encoders_file`), the
training curves, and ``retrieval.json``: for every pair of modalities, how well the shared
space finds a test case's partner (Recall@1/5/10 and median rank, both directions, with
bootstrap CIs and chance), when an objective has a shared space.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from fusiondx.config import Config
from fusiondx.data.labelling import label_cases
from fusiondx.data.manifest import check_manifest, modality_present, read_manifest
from fusiondx.data.preprocessors import Preprocessor, make_preprocessor
from fusiondx.data.splits import splits_from_column
from fusiondx.data.store import CaseStore, build_store
from fusiondx.engine import runfolder
from fusiondx.engine.checkpoints import load_checkpoint
from fusiondx.engine.curves import TrainingCurves
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.encoders_file import PretrainedEncoders, save_encoders
from fusiondx.engine.pretrain_task import PretrainTask
from fusiondx.engine.rundir import RunDir, write_json, write_text
from fusiondx.engine.selection import BestEpoch
from fusiondx.engine.trainer import build_trainer, setup_torch, train
from fusiondx.errors import ConfigError, DataError, summarise
from fusiondx.evaluation.retrieval import partner_ranks, retrieval_scores
from fusiondx.models.build import build_encoders
from fusiondx.objectives import Objective
from fusiondx.registry import ENCODERS, OBJECTIVES, check_options
from fusiondx.types import ModalitySpec


@dataclass
class PretrainResult:
    """Where the pretraining run was written, and what it measured."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def encoders_file(self) -> Path:
        return RunDir(self.run_dir).encoders_file


def pretrain(
    cfg: Config, *, overwrite: bool = False, progress: bool | None = None
) -> PretrainResult:
    """Pretrain ``cfg``'s encoders with ``cfg.pretrain``'s objectives; write ``cfg.run_dir``."""
    # Unknown parts fail before the run folder or any data is touched.
    check_objectives(cfg)
    check_encoders(cfg)
    with runfolder.open_run(cfg.run_dir, resume=False, overwrite=overwrite):
        return _pretrain(cfg, progress=cfg.train.progress if progress is None else progress)


def check_objectives(cfg: Config) -> None:
    """A ConfigError for an empty or unknown objective, or options it does not take."""
    if not cfg.pretrain.objectives:
        raise ConfigError(
            "pretrain.objectives is empty: pretraining needs at least one objective.",
            fix=f"add one of: {', '.join(OBJECTIVES.names())}",
        )
    for o in cfg.pretrain.objectives:
        check_options(
            OBJECTIVES.get(o.name).cls,
            {"dims": {}, "specs": {}, **o.options},
            what=f"objective '{o.name}'",
        )


def check_encoders(cfg: Config) -> None:
    """The configured encoders exist and take their options (as ``fit`` checks them)."""
    for m in cfg.modalities:
        check_options(
            ENCODERS.get(m.encoder_name).cls, m.encoder.options, what=f"encoder '{m.encoder_name}'"
        )


def labelled_rows(cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """(N,) True where every task's label cells are filled."""
    ok = np.ones(len(df), dtype=bool)
    for t in cfg.tasks:
        for col in [t.label] if isinstance(t.label, str) else list(t.label):
            if col not in df.columns:
                return np.zeros(len(df), dtype=bool)
            cells = df[col]
            ok &= ~(cells.isna() | cells.astype(str).str.strip().eq("")).to_numpy()
    return ok


def pretrain_split(cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """train / val / test per case: the split column, or ``fit``'s split of the labelled cases
    with every unlabelled case in train (see the module docstring)."""
    if cfg.data.split.column:
        return splits_from_column(df, cfg.data.split.column, cfg.data.id_column)
    labelled = labelled_rows(cfg, df)
    if not labelled.any():
        raise DataError(
            "No case of the manifest has every task's label, so pretraining cannot hold out the "
            "validation and test cases that fine-tuning will use.",
            file=cfg.data.manifest,
            fix="label some cases, or give the split in a column (data.split.column)",
        )
    split = np.full(len(df), "train", dtype=object)
    if labelled.all():
        split[:] = label_cases(cfg).split
        return split.astype(str)
    # fit's split is made on the labelled cases alone, in their order: make it the same way.
    with tempfile.TemporaryDirectory(prefix="fusiondx-pretrain-") as tmp:
        sub = Path(tmp) / cfg.data.manifest.name
        df[labelled].to_csv(sub, index=False, sep=cfg.data.sep)
        data = cfg.data.model_copy(update={"manifest": sub, "root": cfg.data.data_root})
        split[labelled] = label_cases(cfg.model_copy(update={"data": data})).split
    return split.astype(str)


def _pretrain(cfg: Config, *, progress: bool) -> PretrainResult:
    run = RunDir(cfg.run_dir)
    setup_torch(cfg)
    path = cfg.data.manifest
    df = read_manifest(path, sep=cfg.data.sep, id_column=cfg.data.id_column)
    problems: list[DataError] = []
    check_manifest(df, cfg, path, need_labels=False, errors=problems)
    if problems:
        raise summarise(problems, path)
    ids = df[cfg.data.id_column].astype(str)
    split = pretrain_split(cfg, df)
    pre: dict[str, Preprocessor] = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, cfg.data.data_root)
        try:
            p.fit(df, modality_present(df, m) & (split == "train"), ids)
        except DataError as err:
            raise err.at(file=path) from None
        pre[m.name] = p
    store = build_store(cfg, df, ids, pre, progress=progress)
    store.split = split
    runfolder.clear_run(run.path)
    specs = {m: p.spec() for m, p in sorted(pre.items())}
    encoders = build_encoders(cfg, specs, "intermediate")
    dims = {m: cast(Any, e).out_dim for m, e in encoders.items()}
    spec_dicts = {m: s.to_dict() for m, s in specs.items()}
    objectives = nn.ModuleDict(
        {
            o.name: OBJECTIVES.create(o.name, dims=dims, specs=spec_dicts, **o.options)
            for o in cfg.pretrain.objectives
        }
    )
    task = PretrainTask(encoders, objectives, cfg.train)
    write_text(run.config_file, cfg.to_yaml())
    write_text(
        run.splits_file,
        pd.DataFrame({"case_id": store.ids, "split": store.split}).to_csv(index=False),
    )
    patience = cfg.train.early_stopping.patience if cfg.train.early_stopping else None
    best = BestEpoch(run.best_checkpoint, run.last_checkpoint, "val/loss", "min", patience)
    trainer = build_trainer(
        cfg, [TrainingCurves(run.curves_file), best], progress=progress, root=run.path
    )
    data = CaseDataModule.from_config(cfg, store)
    seconds = train(trainer, task, data)
    kept = best.path if best.path.is_file() else run.last_checkpoint
    task.load_state_dict(load_checkpoint(kept, lightning=True)["state_dict"])
    task.eval()
    train_ids = [str(i) for i in store.ids[store.split == "train"]]
    save_encoders(
        run.encoders_file,
        PretrainedEncoders(
            modalities={
                m: {
                    "encoder": cfg.modality(m).encoder_name,
                    "options": dict(cfg.modality(m).encoder.options),
                    "spec": spec_dicts[m],
                    "preprocessor": pre[m].state(),
                }
                for m in specs
            },
            objectives=[
                {"name": name, "options": _options(cast(Objective, obj))}
                for name, obj in objectives.items()
            ],
            trained_on=train_ids,
            state={f"encoders.{k}": v for k, v in encoders.state_dict().items()}
            | {f"objectives.{k}": v for k, v in objectives.state_dict().items()},
        ),
    )
    retrieval = measure_retrieval(task, store, data, seed=cfg.seed)
    if retrieval:
        write_json(run.retrieval_file, retrieval)
    metrics = {
        "name": cfg.name,
        "kind": "pretrain",
        "objectives": [o.name for o in cfg.pretrain.objectives],
        "best_epoch": best.best_epoch,
        "epochs_run": trainer.current_epoch,
        "val_loss": best.best_loss,
        "train_seconds": round(seconds, 2),
        "cases": {s: int((store.split == s).sum()) for s in ("train", "val", "test")},
        "retrieval": retrieval or None,
    }
    write_json(run.metrics_file, metrics)
    if progress:
        print(f"wrote {run.encoders_file}", file=sys.stderr)
    return PretrainResult(run.path, metrics)


def _options(obj: Objective) -> dict[str, Any]:
    return {k: v for k, v in obj.get_config().items() if k not in ("dims", "specs")}


@torch.no_grad()
def embed_cases(
    task: PretrainTask, store: CaseStore, data: CaseDataModule, idx: np.ndarray
) -> dict[str, torch.Tensor]:
    """Every modality's embedding of the cases ``idx`` (absent ones included; see the mask)."""
    chunks: dict[str, list[torch.Tensor]] = {m: [] for m in task.modalities}
    for batch in data.inference_loader(idx):
        for m, e in task.embed(batch["inputs"]).items():
            chunks[m].append(e)
    return {m: torch.cat(c) for m, c in chunks.items()}


def shared_space(task: PretrainTask) -> Objective | None:
    """The first objective with a shared space (what retrieval searches), or None."""
    for obj in task.objectives.values():
        if cast(Objective, obj).projects:
            return cast(Objective, obj)
    return None


def measure_retrieval(
    task: PretrainTask,
    store: CaseStore,
    data: CaseDataModule,
    *,
    split: str = "test",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """``"<from>-><to>"`` -> retrieval scores on the ``split`` cases that have both modalities."""
    space = shared_space(task)
    idx = store.indices(split)
    if space is None or len(idx) == 0:
        return {}
    emb = space.project(embed_cases(task, store, data, idx))
    mask = torch.from_numpy(store.mask[idx])
    out: dict[str, Any] = {}
    for a, b in permutations(task.modalities, 2):
        both = mask[:, task.modalities.index(a)] & mask[:, task.modalities.index(b)]
        if int(both.sum()) < 2:
            continue
        ranks = partner_ranks(emb[a][both], emb[b][both])
        out[f"{a}->{b}"] = retrieval_scores(ranks, n_boot=n_boot, seed=seed)
    return out


def spec_of(enc: PretrainedEncoders, modality: str) -> ModalitySpec:
    return ModalitySpec.from_dict(enc.modalities[modality]["spec"])
