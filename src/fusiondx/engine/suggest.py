"""`fusiondx suggest`: which unlabelled cases an expert should label next (active learning).

A trained run scores every case of a pool by how unsure its classification task(s) are (an
acquisition strategy of :mod:`fusiondx.evaluation.acquisition`: entropy by default, margin or
least-confident; several tasks' scores are averaged). Without ``diversity`` the most unsure come
first. With it, the batch is drawn from the ``candidates * n`` most unsure cases by k-center greedy
on the model's fused features (:mod:`fusiondx.evaluation.diversity`, Sener & Savarese 2018): the
most unsure case first, then each time the case farthest from those already picked, so the batch
does not spend an expert's time on near-copies.

Not ranked, but listed last with the reason: cases with no modality present (the model could
only repeat its prior) and cases the run trained on (in its ``splits.csv`` as train). Labels in
the pool are never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.config.modalities import TabularModality
from fusiondx.data.dataset import to_device
from fusiondx.data.manifest import read_manifest
from fusiondx.data.store import prepare_with_state
from fusiondx.engine import runfolder
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.inference import loader_outputs
from fusiondx.engine.posthoc import Posthoc
from fusiondx.engine.posthoc import apply as apply_posthoc
from fusiondx.engine.rundir import RunDir
from fusiondx.engine.suggest_reasons import TaskProbs, diversity_reason, uncertainty_reason
from fusiondx.errors import ConfigError, DataError, RunError
from fusiondx.evaluation.acquisition import scores
from fusiondx.evaluation.diversity import k_center_greedy
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.registry import ACQUISITIONS
from fusiondx.tasks import TaskInfo, task_type

CANDIDATES = 4
"""With diversity, the batch of n is picked among the ``CANDIDATES * n`` most uncertain cases."""
COLUMNS = ("rank", "case_id", "score")  # how a suggestions file starts (what --out may replace)


@dataclass
class Suggestions:
    """What :func:`suggest` found.

    ``table`` holds the ranked cases first (rank 1 = label first), then the pool cases not
    ranked (rank empty, the reason says why). ``notes`` are what a user should know (cases left
    out, fewer cases than asked); ``written`` the CSV written, if any.
    """

    table: pd.DataFrame
    ranked: int
    pool: int
    notes: list[str] = field(default_factory=list)
    written: Path | None = None


def suggest(
    run_dir: Path,
    pool: Path,
    *,
    n: int = 50,
    strategy: str = "entropy",
    diversity: bool = False,
    candidates: int = CANDIDATES,
    out: Path | None = None,
    root: Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Suggestions:
    """Rank the cases of ``pool`` (a manifest; labels not needed) for expert labelling.

    Args:
        run_dir: a run folder written by ``fusiondx fit`` with a classification task.
        pool: the unlabelled cases, a manifest with the run's modality columns.
        n: how many cases to suggest (all rankable ones when the pool holds fewer).
        strategy: a registered acquisition strategy (``fusiondx list acquisitions``).
        diversity: pick a diverse batch among the ``candidates * n`` most uncertain cases.
        out: write the table there as CSV (never over the pool or a file of the run; an existing
            file that is not a suggestions table only with ``overwrite``).
        root: data root of the pool's file paths (default: the pool's folder).
        progress: show the decoding progress bar.
        notify: receives each progress line and note as it happens.
    """
    say = notify or (lambda _: None)
    if n < 1:
        raise ConfigError(
            f"The number of cases to suggest must be at least 1 (got {n}).",
            fix="ask for how many cases the expert should label, e.g. --n 50",
        )
    if candidates < 1:
        raise ConfigError(
            f"candidates must be at least 1 (got {candidates}).",
            fix=f"use the default {CANDIDATES}: the batch is drawn from the {CANDIDATES}n most uncertain",
        )
    ACQUISITIONS.get(strategy)  # an unknown name fails before anything is loaded
    pool = Path(pool)
    if not pool.is_file():
        raise DataError(
            "The pool file does not exist.",
            file=pool,
            fix="give --pool a manifest (CSV or Parquet) of the cases to rank; labels are not needed",
        )
    run = RunDir(run_dir)
    if out is not None:
        runfolder.check_output(
            out, inputs=[pool], run_dir=run.path, keep="", overwrite=overwrite, ours=_ours(out)
        )
    cfg, model, state = run.load()
    tasks = [TaskInfo.from_dict(t) for t in state["tasks"]]
    used = [t for t in tasks if task_type(t).is_classification]
    if not used:
        raise RunError(
            f"The run has no classification task (its tasks: "
            f"{', '.join(f'{t.name} ({t.type})' for t in tasks)}); suggest ranks cases by how "
            "unsure a classifier is.",
            file=run.config_file,
            fix="use a run with a binary, multiclass or multilabel task",
        )
    notes: list[str] = []
    if len(used) < len(tasks):
        notes.append(
            "Not used for ranking (not classification): "
            + ", ".join(f"{t.name} ({t.type})" for t in tasks if t not in used)
            + "."
        )
    if out is not None:  # the training manifest too, now that the config says where it is
        runfolder.check_output(
            out,
            inputs=[pool, cfg.data.manifest],
            run_dir=run.path,
            keep="",
            overwrite=overwrite,
            ours=_ours(out),
        )
    cfg = _pool_config(cfg)
    _check_columns(cfg, pool)
    say(f"Reading the pool {pool}")
    prepared = prepare_with_state(
        cfg, state, pool, root or pool.parent, need_labels=False, progress=progress
    )
    store = prepared.store
    say(
        f"Scoring {len(store)} pool cases with {run.path} ({strategy} uncertainty of "
        f"{', '.join(t.name for t in used)})"
    )
    loader = CaseDataModule.from_config(cfg, store, train=False).predict_dataloader()
    # Calibrated as `predict` gives them (posthoc.json), so the scores are the run's own.
    post = Posthoc(run.posthoc())
    outputs = apply_posthoc(post, model, used, loader_outputs(model, loader))
    probs = [_task_probs(t, model, outputs[t.name], post.thresholds(t.name)) for t in used]
    score = np.mean([scores(strategy, p.probs, multilabel=p.multilabel) for p in probs], axis=0)

    present: np.ndarray = np.asarray(store.mask.any(axis=1))
    split = _run_splits(run, store.ids)
    eligible = np.flatnonzero(present & (split != "train"))
    notes += _left_out(store.ids, present, split)
    if not len(eligible):
        raise DataError(
            f"None of the {len(store)} pool cases can be ranked: each has no modality present "
            "or is in the run's training split.",
            file=pool,
            fix="give a pool of new cases with at least one modality filled in",
        )
    k = min(n, len(eligible))
    if k < n:
        notes.append(
            f"Asked for {n} cases but only {k} pool case(s) can be ranked: all {k} are listed."
        )
    by_score = eligible[np.argsort(-score[eligible], kind="stable")]
    if diversity and k > 1:
        size = min(len(by_score), max(k, candidates * k))
        say(
            f"Picking {k} diverse cases among the {size} most uncertain (k-center greedy on the "
            "fused features)"
        )
        feats = _features(model, CaseDataModule.from_config(cfg, store, train=False))
        picked, why = _diverse(
            feats, by_score[:size], k, np.flatnonzero(present & (split == "train"))
        )
    else:
        picked, why = by_score[:k], [""] * k
    reasons = {
        int(i): uncertainty_reason(probs, int(i)) + w for i, w in zip(picked, why, strict=True)
    }
    for i in np.flatnonzero(np.isin(split, ("val", "test"))):
        if int(i) in reasons:
            reasons[int(i)] += (
                f"; note: the run's {split[i]} split holds a case of this id, so it may be "
                "labelled already"
            )
    table = _table(store.ids, store.modalities, store.mask, probs, score, picked, reasons, split)
    result = Suggestions(table, len(picked), len(store), notes)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
        result.written = out
    return result


def _diverse(
    feats: np.ndarray, cand: np.ndarray, k: int, labelled: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """k of the candidates (most uncertain first) by k-center greedy on their features, the most
    uncertain taken first; the pool's cases the run trained on count as covered already."""
    picks = k_center_greedy(feats[cand], k, first=0, centres=feats[labelled])
    why = [
        "; " + diversity_reason(step, float(dist), int(pos), len(cand))
        for step, (pos, dist) in enumerate(zip(picks.order, picks.distance, strict=True))
    ]
    return cand[picks.order], why


def _pool_config(cfg: Config) -> Config:
    """The run's config asking of a pool only ids and modalities: its split, patient and
    metadata columns described the training manifest, not new cases."""
    data = cfg.data.model_copy(
        update={
            "split": cfg.data.split.model_copy(update={"column": None}),
            "patient_column": None,
            "metadata_columns": [],
        }
    )
    return cfg.model_copy(update={"data": data})


def _check_columns(cfg: Config, pool: Path) -> None:
    """Every modality column the run trained with must be in the pool (empty cells are fine)."""
    have = set(read_manifest(pool, sep=cfg.data.sep, id_column=cfg.data.id_column).columns)
    for m in cfg.modalities:
        cols = list(m.columns) if isinstance(m, TabularModality) else [m.column]
        missing = [c for c in cols if c not in have]
        if missing:
            raise DataError(
                f"The pool has no column '{missing[0]}' of modality '{m.name}', which the run "
                "was trained with.",
                file=pool,
                column=missing[0],
                fix=f"add the column {', '.join(repr(c) for c in missing)} to the pool, with an "
                f"empty cell where a case has no {m.name}",
            )


def _task_probs(
    t: TaskInfo, model: MultimodalModel, raw: Any, thresholds: list[float] | None = None
) -> TaskProbs:
    """One task's probabilities (N, K): single-label ones as a distribution over its classes."""
    tt = task_type(t)
    p = np.asarray(tt.head_output(t, model.task_head(t.name), raw), dtype=np.float64)
    p = p.reshape(len(p), -1)
    multilabel = not tt.class_indices
    if not multilabel and p.shape[1] == 1:  # binary: the positive class only
        p = np.concatenate([1.0 - p, p], axis=1)
    return TaskProbs(t.name, t.classes, p, multilabel, tuple(thresholds) if thresholds else None)


@torch.no_grad()
def _features(model: MultimodalModel, data: CaseDataModule) -> np.ndarray:
    """The model's fused features (N, D) of every case of the store, in order."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [
        model.features(to_device(b["inputs"], device), b["mask"].to(device)).float().cpu()
        for b in data.predict_dataloader()
    ]
    return torch.cat(chunks).numpy()


def _run_splits(run: RunDir, ids: np.ndarray) -> np.ndarray:
    """The run's split of each pool case id ('' when the run never saw that id)."""
    if not run.splits_file.is_file():
        return np.full(len(ids), "", dtype=object).astype(str)
    saved = pd.read_csv(run.splits_file, dtype=str, keep_default_na=False)
    known = dict(zip(saved["case_id"], saved["split"], strict=True))
    return np.array([known.get(str(i), "") for i in ids], dtype=str)


def _left_out(ids: np.ndarray, present: np.ndarray, split: np.ndarray) -> list[str]:
    notes = []
    for what, sel in (
        ("have no modality present", ~present),
        ("are in the run's training split (splits.csv: train), labelled already", split == "train"),
    ):
        if sel.any():
            few = ", ".join(str(i) for i in ids[sel][:5]) + (", ..." if sel.sum() > 5 else "")
            notes.append(f"{int(sel.sum())} pool case(s) {what}: not ranked ({few}).")
    held = np.isin(split, ("val", "test"))
    if held.any():
        notes.append(
            f"{int(held.sum())} pool case id(s) are in the run's val/test split: ranked, but "
            "they may be labelled already."
        )
    return notes


def _table(
    ids: np.ndarray,
    modalities: list[str],
    mask: np.ndarray,
    probs: list[TaskProbs],
    score: np.ndarray,
    picked: np.ndarray,
    reasons: dict[int, str],
    split: np.ndarray,
) -> pd.DataFrame:
    """Ranked rows in pick order, then the pool cases that could not be ranked."""
    present: np.ndarray = np.asarray(mask.any(axis=1))
    unranked = np.flatnonzero(~present | (split == "train"))
    rows = np.concatenate([picked, unranked]).astype(int)
    ranked = len(picked)
    cols: dict[str, Any] = {
        "rank": pd.array(list(range(1, ranked + 1)) + [None] * len(unranked), dtype="Int64"),
        "case_id": ids[rows],
        "score": np.where(np.arange(len(rows)) < ranked, score[rows].round(6), np.nan),
    }
    for p in probs:
        cols |= {k: np.where(present[rows], v, None) for k, v in p.columns(rows).items()}
    why = []
    for i in rows[ranked:]:
        why.append(
            "not ranked: no modality present, so the model could only repeat its prior"
            if not present[i]
            else "not ranked: the run trained on this case (splits.csv: train), so it is labelled"
        )
    cols["reason"] = [reasons[int(i)] for i in picked] + why
    cols["modalities"] = [
        "+".join(m for m, on in zip(modalities, mask[i], strict=True) if on) or "none" for i in rows
    ]
    return pd.DataFrame(cols)


def _ours(path: Path) -> bool:
    """Whether ``path`` is a suggestions table FusionDx could have written."""
    cols = runfolder.csv_columns(path) if path.is_file() else None
    return cols is not None and tuple(cols[: len(COLUMNS)]) == COLUMNS
