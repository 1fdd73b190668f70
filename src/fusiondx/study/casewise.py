"""Study statistics of tasks beyond classification, read back from the predictions tables.

Each model's test predictions (one table per seed) become per-case statistics once: IoU per case,
Dice per case, BLEU n-gram counts and METEOR statistics, ROUGE-L and CIDEr per case, risks, values.
Every metric is then a function of case weights (how often each case is drawn in a bootstrap
replicate; see :mod:`fusiondx.evaluation.weights`), so 1000 replicates of every seed cost one
matrix product rather than 1000 re-scorings. CIs and paired differences follow :mod:`.stats`: the
replicates resample the test cases once for all seeds and models, the seed-averaged metric is
bootstrapped, and the p-value of a difference is the two-sided bootstrap one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fusiondx.data.targets import TaskInfo
from fusiondx.evaluation.predictions import BOX_SIDES
from fusiondx.evaluation.regions import box_metrics
from fusiondx.evaluation.regression import regression_metrics
from fusiondx.evaluation.survival import concordance_index
from fusiondx.evaluation.task_types import METRICS_BY_TYPE
from fusiondx.evaluation.text import text_metrics_from_scores, text_scores
from fusiondx.evaluation.weights import weighted_mean, weights_from_indices
from fusiondx.study.stats import _percentiles, bootstrap_indices, bootstrap_p_value

Scorer = Callable[[np.ndarray | None], Any]  # case weights (B, N) or None -> value(s)


def metric_names(info: TaskInfo) -> tuple[str, ...]:
    return tuple(METRICS_BY_TYPE[info.type])


def scorers(frame: pd.DataFrame, info: TaskInfo) -> dict[str, Scorer]:
    """Per metric, a function of case weights, from one predictions table (cases in order)."""
    t = info.name
    if info.type == "box":
        pred = frame[[f"{t}_pred_{s}" for s in BOX_SIDES]].to_numpy(np.float64)
        true = frame[[f"{t}_true_{s}" for s in BOX_SIDES]].to_numpy(np.float64)
        return {m: (lambda w, m=m: box_metrics(pred, true, w)[m]) for m in metric_names(info)}
    if info.type == "mask":
        dice, iou = frame[f"{t}_dice"].to_numpy(np.float64), frame[f"{t}_iou"].to_numpy(np.float64)
        lesion = frame[f"{t}_lesion"].to_numpy(np.float64) == 1
        on = {"dice": dice, "iou": iou, "dice_lesion": np.where(lesion, dice, np.nan),
              "iou_lesion": np.where(lesion, iou, np.nan)}
        return {m: (lambda w, v=on[m]: weighted_mean(v, w)) for m in metric_names(info)}
    if info.type == "text":
        from fusiondx.data.task_targets import UNK

        # The written words, not their ids: METEOR matches stems, synonyms and paraphrases. An
        # empty reference is a case without reference text and drops out of every metric.
        refs = frame[f"{t}_true"].fillna("").astype(str).tolist()
        hyps = frame[f"{t}_pred"].fillna("").astype(str).tolist()
        scores = text_scores(hyps, refs, unk=UNK)
        return {m: (lambda w, m=m: text_metrics_from_scores(scores, w)[m]) for m in metric_names(info)}
    if info.type == "survival":
        risk = frame[f"{t}_risk"].to_numpy(np.float64)
        time, event = frame[f"{t}_time"].to_numpy(np.float64), frame[f"{t}_event"].to_numpy(np.float64)
        return {"c_index": lambda w: concordance_index(risk, time, event, w)}
    if info.type == "regression":
        pred, true = frame[f"{t}_pred"].to_numpy(np.float64), frame[f"{t}_true"].to_numpy(np.float64)
        return {m: (lambda w, m=m: regression_metrics(pred, true, w)[m]) for m in metric_names(info)}
    raise ValueError(f"no case-wise statistics for task type {info.type!r}")


def strata(frame: pd.DataFrame, info: TaskInfo) -> np.ndarray | None:
    """Resampling strata that keep each replicate's mix of lesion/no-lesion or event/censored."""
    t = info.name
    if info.type == "box":
        return np.isfinite(frame[f"{t}_true_x0"].to_numpy(np.float64)).astype(int)
    if info.type == "mask":
        return frame[f"{t}_lesion"].fillna(-1).to_numpy().astype(int)
    if info.type == "survival":
        return frame[f"{t}_event"].to_numpy().astype(int)
    return None


def _weights(n: int, n_boot: int, seed: int, groups: np.ndarray | None) -> np.ndarray:
    return weights_from_indices(bootstrap_indices(n, n_boot, seed, groups), n)


def pooled_ci(name: str, per_seed: Sequence[dict[str, Scorer]], n: int, groups: np.ndarray | None, *,
              n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Seed-averaged metric with a percentile bootstrap CI over the test cases (as stats.pooled_ci)."""
    full = np.array([float(s[name](None)) for s in per_seed])
    w = _weights(n, n_boot, seed, groups)
    reps = np.mean([np.asarray(s[name](w), dtype=np.float64) for s in per_seed], axis=0)
    low, high = _percentiles(reps, alpha)
    return {"mean": float(np.mean(full)), "low": low, "high": high,
            "per_seed": [float(v) for v in full], "n_boot": int(n_boot)}


def paired_difference(name: str, a: Sequence[dict[str, Scorer]], b: Sequence[dict[str, Scorer]], n: int,
                      groups: np.ndarray | None, *, n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> dict[str, Any]:
    """metric(a) - metric(b) on the same resampled cases, each averaged over its own seeds."""
    full = np.mean([float(s[name](None)) for s in a]) - np.mean([float(s[name](None)) for s in b])
    w = _weights(n, n_boot, seed, groups)
    d = (np.mean([np.asarray(s[name](w), dtype=np.float64) for s in a], axis=0)
         - np.mean([np.asarray(s[name](w), dtype=np.float64) for s in b], axis=0))
    low, high = _percentiles(d, alpha)
    return {"difference": float(full), "low": low, "high": high, "p_value": bootstrap_p_value(d),
            "n_boot": int(n_boot)}
