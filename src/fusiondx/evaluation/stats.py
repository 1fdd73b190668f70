"""Confidence intervals and paired tests for models compared on the same test cases.

Every model of the study is scored on the SAME test cases and trained with several seeds, so
the uncertainty that matters is the one from the finite test set, and comparisons are paired:

* ``pooled_ci``: a percentile bootstrap over test cases of the seed-averaged metric. Each
  replicate resamples the cases once and scores every seed on those same cases, so the interval
  reflects test-set sampling around the mean model, not the spread between seeds (which is
  reported separately as ``per_seed``).
* ``paired_difference``: the same bootstrap for ``metric(a) - metric(b)``, resampling the cases
  once per replicate for both models (paired), with a two-sided bootstrap p-value.
* ``delong_test``: DeLong et al. (1988) paired test of two AUROCs on binary tasks, with the
  fast algorithm of Sun & Xu (2014).

Pass the same bootstrap ``seed`` for every model: the replicates are then the same resampled
case sets for all of them, so intervals are paired across models as well.

The metrics are the ones of ``fusiondx.evaluation.metrics`` (torchmetrics) re-implemented in
numpy so that 1000 replicates cost milliseconds: the confusion counts of all replicates come
from one bincount, and AUROC / AUPRC from the multiplicity of every case in every replicate
summed per group of equal scores in one global sort of the scores (ties grouped as in
torchmetrics), so nothing is sorted per replicate. As in ``metrics.py``, probabilities are
compared in float32 (what the models output), classes are predicted with threshold 0.5
(binary, multilabel) or argmax (multiclass), and precision/recall/F1 are macro over classes
(over the two classes for binary tasks), with torchmetrics' zero-division rule (0) and its rule
of leaving out of a multiclass macro average a class that is neither present nor predicted.

One deliberate difference: a class/label whose one-vs-rest AUROC (no positives or no negatives)
or AUPRC (no positives) is undefined is NaN and left out of the macro average, whereas
torchmetrics scores such a class 0 (AUROC) or 0 (AUPRC of a label without positives). On test
sets where every class/label has positives and negatives the values are identical; on bootstrap
replicates that happen to lose a rare class, counting it as 0 would bias the interval downwards.
A metric undefined on a whole sample (e.g. AUROC with one class present) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

METRICS: tuple[str, ...] = (
    "precision",
    "accuracy",
    "f1",
    "recall",
    "auroc",
    "auprc",
    "balanced_accuracy",
    "specificity",
    "sensitivity",
)
TASK_TYPES: tuple[str, ...] = ("binary", "multiclass", "multilabel")
_RANKING = ("auroc", "auprc")
_THRESHOLD = 0.5
# Replicates are processed in blocks of at most this many (replicate, case, class) cells, so
# memory stays bounded (int64: 32 MiB) whatever n_boot x n_cases is.
_BLOCK_CELLS = 4_000_000


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}")


def _check_task(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(
            f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}"
        )


def _targets(y: Any, task_type: str) -> np.ndarray:
    """Targets as 0/1 indicators (N, K): K = 2 for binary (column 1 = positive class)."""
    _check_task(task_type)
    y = np.asarray(y)
    if task_type == "multilabel":
        if y.ndim != 2:
            raise ValueError(f"multilabel y must be (N, K), got shape {y.shape}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("multilabel y must hold only 0/1")
        return y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{task_type} y must be (N,) class indices, got shape {y.shape}")
    if y.size and (y.min() < 0 or not np.array_equal(y, np.round(y))):
        raise ValueError(f"{task_type} y must hold non-negative integer class indices")
    return y.astype(np.int64)


def _probs(probs: Any, task_type: str, n: int) -> np.ndarray:
    """Probabilities as float32 (N, K) (binary: (N, 1), the positive class)."""
    p = np.asarray(probs, dtype=np.float64)
    if task_type == "binary":
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.ndim != 1:
            raise ValueError(f"binary probs must be (N,) or (N, 1), got shape {p.shape}")
        p = p[:, None]
    elif p.ndim != 2:
        raise ValueError(f"{task_type} probs must be (N, K), got shape {p.shape}")
    if p.shape[0] != n:
        raise ValueError(f"probs hold {p.shape[0]} cases but y holds {n}")
    if not np.isfinite(p).all():
        raise ValueError("probs must be finite")
    return p.astype(np.float32)


class _Case:
    """Targets and probabilities of one model on the test cases, in the form the metrics use."""

    def __init__(self, y: Any, probs: Any, task_type: str) -> None:
        t = _targets(y, task_type)
        n = t.shape[0]
        p = _probs(probs, task_type, n)
        self.task_type = task_type
        self.n = n
        if task_type == "binary":
            if t.size and t.max() > 1:
                raise ValueError("binary y must hold only 0/1")
            pred = (p[:, 0] > _THRESHOLD).astype(np.int64)  # == argmax([1-p, p])
            self.k = 2
            self.codes = t * 2 + pred  # (N,) true * K + predicted
            self.scores = p  # (N, 1)
            self.score_truth = (t == 1).astype(np.float64)[:, None]
        elif task_type == "multiclass":
            k = p.shape[1]
            if t.size and t.max() >= k:
                raise ValueError(f"y holds class {t.max()} but probs have only {k} columns")
            self.k = k
            self.codes = t * k + np.argmax(p, axis=1)  # first maximum, as torch
            self.scores = p
            self.score_truth = np.eye(k)[t]
        else:
            if t.shape[1] != p.shape[1]:
                raise ValueError(f"y has {t.shape[1]} labels but probs have {p.shape[1]}")
            k = t.shape[1]
            self.k = k
            pred = (p > _THRESHOLD).astype(np.int64)
            # (N, K): label * 4 + true * 2 + predicted
            self.codes = np.arange(k) * 4 + t.astype(np.int64) * 2 + pred
            self.scores = p
            self.score_truth = t


# --------------------------------------------------------------------------------------------
# Metrics of all bootstrap replicates at once
# --------------------------------------------------------------------------------------------


def _div(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """num / den, ``fill`` where den == 0 (torchmetrics' zero_division=0 by default)."""
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of the finite entries; NaN for a row with none."""
    ok = np.isfinite(x)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, x, 0.0).sum(axis=1)
    return _div(tot, cnt, fill=np.nan)


def _macro_present(score: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """torchmetrics' multiclass macro: classes with tp + fp + fn == 0 are left out (0 if none)."""
    w = ((tp + fp + fn) > 0).astype(np.float64)
    return _div((w * score).sum(axis=1), w.sum(axis=1))


def _confusion(case: _Case, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-class tp, fp, fn, tn of every replicate, (B, K) each, by one bincount of codes.

    (A matrix product with the case multiplicities would do too, but multithreaded BLAS on
    these small products is slow and erratic on a busy machine; bincount is exact and steady.)
    """
    b, k = idx.shape[0], case.k
    codes = case.codes[idx]  # (B, n) or (B, n, K)
    if case.task_type == "multilabel":
        cells = 4 * k
        rows = np.arange(b, dtype=np.int64)[:, None, None] * cells
        cm4 = np.bincount((rows + codes).ravel(), minlength=b * cells).reshape(b, k, 2, 2)
        tp, fp, fn, tn = cm4[:, :, 1, 1], cm4[:, :, 0, 1], cm4[:, :, 1, 0], cm4[:, :, 0, 0]
        return tuple(x.astype(np.float64) for x in (tp, fp, fn, tn))
    cells = k * k
    rows = np.arange(b, dtype=np.int64)[:, None] * cells
    cm = np.bincount((rows + codes).ravel(), minlength=b * cells).reshape(b, k, k)
    cm = cm.astype(np.float64)  # [replicate, true, predicted]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fn = cm.sum(axis=2) - tp
    fp = cm.sum(axis=1) - tp
    tn = idx.shape[1] - tp - fn - fp
    return tp, fp, fn, tn


def _threshold_metric(name: str, case: _Case, idx: np.ndarray) -> np.ndarray:
    tp, fp, fn, tn = _confusion(case, idx)
    total = np.full(idx.shape[0], float(idx.shape[1]))
    support = tp + fn
    predicted = tp + fp
    if case.task_type == "binary":
        if name == "sensitivity":
            return _div(tp[:, 1], support[:, 1])
        if name == "specificity":
            return _div(tn[:, 1], tn[:, 1] + fp[:, 1])
    elif name == "sensitivity":
        return np.full(idx.shape[0], np.nan)  # binary-only metric
    multilabel = case.task_type == "multilabel"
    if name == "accuracy":
        if multilabel:
            return _div(tp + tn, total[:, None]).mean(axis=1)
        return _div(tp.sum(axis=1), total)
    if name in ("recall", "balanced_accuracy") and not multilabel:
        score = _div(tp, support)
    elif name == "recall":
        return _div(tp, support).mean(axis=1)
    elif name == "balanced_accuracy":
        return ((_div(tp, support) + _div(tn, tn + fp)) / 2).mean(axis=1)
    elif name == "precision":
        score = _div(tp, predicted)
    elif name == "f1":
        score = _div(2 * tp, 2 * tp + fp + fn)
    elif name == "specificity":
        score = _div(tn, tn + fp)
    else:  # pragma: no cover - names are checked before
        raise ValueError(name)
    return score.mean(axis=1) if multilabel else _macro_present(score, tp, fp, fn)


class _Ranking:
    """A score column grouped by equal scores (ties), highest first, in one global sort."""

    def __init__(self, score: np.ndarray, positive: np.ndarray) -> None:
        distinct, group = np.unique(-score, return_inverse=True)  # group 0 = highest score
        self.n_groups = distinct.size
        self.codes = group.ravel().astype(np.int64) * 2 + (positive > 0)

    def counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positives P and negatives Q of every replicate per score group: (B, G) each."""
        b, cells = idx.shape[0], 2 * self.n_groups
        rows = np.arange(b, dtype=np.int64)[:, None] * cells
        cm = np.bincount((rows + self.codes[idx]).ravel(), minlength=b * cells)
        cm = cm.reshape(b, self.n_groups, 2).astype(np.float64)
        return cm[:, :, 1], cm[:, :, 0]


def _auroc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC, ties counted 1/2 (= the trapezoidal ROC area of torchmetrics)."""
    n1 = pos.sum(axis=1)
    n0 = neg.sum(axis=1)
    below = n0[:, None] - np.cumsum(neg, axis=1)  # negatives scored strictly lower
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _div(num, n1 * n0, fill=np.nan)


def _auprc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Average precision: sum over distinct thresholds of (recall step) x precision."""
    tp = np.cumsum(pos, axis=1)
    called = tp + np.cumsum(neg, axis=1)
    precision = _div(tp, called)
    return _div((pos * precision).sum(axis=1), pos.sum(axis=1), fill=np.nan)


def _ranking_metric(
    name: str, case: _Case, rankings: list[_Ranking], idx: np.ndarray
) -> np.ndarray:
    per_class = []
    for r in rankings:
        pos, neg = r.counts(idx)
        if name == "auroc":
            per_class.append(_auroc(pos, neg))
        else:
            v = _auprc(pos, neg)
            if case.task_type == "binary":  # as metrics.py: NaN unless both classes
                v[neg.sum(axis=1) == 0] = np.nan
            per_class.append(v)
    return _nanmean_rows(np.stack(per_class, axis=1))


def _rankings(case: _Case) -> list[_Ranking]:
    return [
        _Ranking(case.scores[:, k], case.score_truth[:, k]) for k in range(case.scores.shape[1])
    ]


def _check_idx(idx: Any, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim == 1:
        idx = idx[None, :]
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("idx must be an integer array (n_boot, n_resampled)")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"idx must index cases 0..{n - 1}")
    return idx


def _replicates(name: str, cases: Sequence[_Case], idx: np.ndarray) -> np.ndarray:
    """Metric of every case set (one per model/seed) on every replicate: (len(cases), B)."""
    out = np.empty((len(cases), idx.shape[0]))
    rankings = [_rankings(c) for c in cases] if name in _RANKING else None
    step = max(1, _BLOCK_CELLS // max(idx.shape[1] * cases[0].k, 1))
    for lo in range(0, idx.shape[0], step):
        block = idx[lo : lo + step]
        for i, case in enumerate(cases):
            if rankings is not None:
                out[i, lo : lo + step] = _ranking_metric(name, case, rankings[i], block)
            else:
                out[i, lo : lo + step] = _threshold_metric(name, case, block)
    return out


def _cases(y: Any, probs_per_seed: Sequence[Any], task_type: str) -> list[_Case]:
    cases = [_Case(y, p, task_type) for p in probs_per_seed]
    if not cases:
        raise ValueError("need the probabilities of at least one seed")
    return cases


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def metric_value(name: str, y: Any, probs: Any, task_type: str) -> float:
    """One metric on all cases; equals ``classification_metrics`` (see the module docstring)."""
    _check_name(name)
    case = _Case(y, probs, task_type)
    idx = np.arange(case.n)[None, :]
    return float(_replicates(name, [case], idx)[0, 0])


def bootstrap_indices(
    n_cases: int, n_boot: int, seed: int, strata: np.ndarray | None = None
) -> np.ndarray:
    """Case indices of ``n_boot`` bootstrap replicates, (n_boot, n_cases) int64.

    With ``strata`` (one label per case, e.g. the class for binary/multiclass tasks) each stratum
    is resampled within itself: column j of every replicate holds a case of the same stratum as
    case j, so class counts are those of the test set and every replicate keeps every class
    (which keeps AUROC defined). The result depends only on (n_cases, n_boot, seed, strata), so
    the same seed gives the same replicates for every model.
    """
    if n_cases < 1 or n_boot < 1:
        raise ValueError("n_cases and n_boot must be >= 1")
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n_cases, size=(n_boot, n_cases), dtype=np.int64)
    strata = np.asarray(strata)
    if strata.shape != (n_cases,):
        raise ValueError(
            f"strata must be one label per case, shape ({n_cases},), got {strata.shape}"
        )
    idx = np.empty((n_boot, n_cases), dtype=np.int64)
    _, group = np.unique(strata, return_inverse=True)
    for g in range(group.max() + 1):
        members = np.flatnonzero(group == g)
        idx[:, members] = members[rng.integers(0, members.size, size=(n_boot, members.size))]
    return idx


def metric_replicates(name: str, y: Any, probs: Any, task_type: str, idx: Any) -> np.ndarray:
    """The metric on each resample ``idx[b]`` of the cases: (n_boot,), NaN where undefined."""
    _check_name(name)
    case = _Case(y, probs, task_type)
    return _replicates(name, [case], _check_idx(idx, case.n))[0]


def _default_strata(y: Any, task_type: str, stratify: bool) -> np.ndarray | None:
    if not stratify or task_type == "multilabel":  # label sets have no single class to keep
        return None
    return _targets(y, task_type)


def _mean_over_seeds(values: np.ndarray) -> np.ndarray:
    """Mean over axis 0; NaN if any seed is NaN (undefinedness comes from the cases, not seeds)."""
    return values.mean(axis=0)


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_p_value(d: np.ndarray) -> float:
    """Two-sided bootstrap p-value of replicate differences ``d``: ``2 min(P(d <= 0), P(d >= 0))``,
    floored at 1 / (defined replicates) and capped at 1; NaN if no replicate is defined."""
    finite = d[np.isfinite(d)]
    if finite.size == 0:
        return math.nan
    p = 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))
    return float(min(1.0, max(p, 1.0 / finite.size)))


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def pooled_ci(
    name: str,
    y: Any,
    probs_per_seed: Sequence[Any],
    task_type: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratify: bool = True,
) -> dict[str, Any]:
    """Seed-averaged metric with a percentile bootstrap CI over test cases.

    Returns ``{"mean", "low", "high", "per_seed", "n_boot"}``: ``mean`` is the mean over seeds of
    the metric on all cases, ``per_seed`` those per-seed values; each replicate resamples the
    cases once, scores every seed on them and averages over seeds, and ``low``/``high`` are the
    ``alpha/2`` and ``1 - alpha/2`` percentiles of those replicate means (replicates where the
    metric is undefined are dropped; NaN if all are). With ``stratify`` (default) binary and
    multiclass tasks are resampled within classes (see ``bootstrap_indices``); multilabel tasks
    are never stratified.
    """
    _check_name(name)
    _check_alpha(alpha)
    cases = _cases(y, probs_per_seed, task_type)
    full = _replicates(name, cases, np.arange(cases[0].n)[None, :])[:, 0]
    idx = bootstrap_indices(cases[0].n, n_boot, seed, _default_strata(y, task_type, stratify))
    reps = _mean_over_seeds(_replicates(name, cases, idx))
    low, high = _percentiles(reps, alpha)
    return {
        "mean": float(full.mean()),
        "low": low,
        "high": high,
        "per_seed": [float(v) for v in full],
        "n_boot": int(n_boot),
    }


def paired_difference(
    name: str,
    y: Any,
    probs_a_per_seed: Sequence[Any],
    probs_b_per_seed: Sequence[Any],
    task_type: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratify: bool = True,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)``, each averaged over its own seeds.

    Both models are scored on the same resampled cases in every replicate, so case difficulty
    cancels out of the difference. Returns ``{"difference", "low", "high", "p_value", "n_boot"}``:
    ``difference`` on all cases, the percentile CI of the replicate differences, and the two-sided
    bootstrap p-value ``2 * min(P(d <= 0), P(d >= 0))`` over the replicates d (capped at 1), i.e.
    the smallest alpha whose percentile interval excludes 0. Because it is estimated from a finite
    number of replicates it cannot resolve values below 1 / (number of defined replicates), so it
    is floored there: "p = 0.001" with 1000 replicates means "p <= 0.001", never an exact 0. A
    model compared with itself gives d == 0 everywhere and p = 1. ``a`` and ``b`` may have
    different numbers of seeds.
    """
    _check_name(name)
    _check_alpha(alpha)
    cases_a = _cases(y, probs_a_per_seed, task_type)
    cases_b = _cases(y, probs_b_per_seed, task_type)
    if cases_a[0].n != cases_b[0].n:  # pragma: no cover - both are checked against y
        raise ValueError("a and b must be scored on the same cases")
    cases = cases_a + cases_b
    na = len(cases_a)
    full = _replicates(name, cases, np.arange(cases[0].n)[None, :])[:, 0]
    idx = bootstrap_indices(cases[0].n, n_boot, seed, _default_strata(y, task_type, stratify))
    reps = _replicates(name, cases, idx)
    d = _mean_over_seeds(reps[:na]) - _mean_over_seeds(reps[na:])
    low, high = _percentiles(d, alpha)
    p = bootstrap_p_value(d)
    return {
        "difference": float(full[:na].mean() - full[na:].mean()),
        "low": low,
        "high": high,
        "p_value": p,
        "n_boot": int(n_boot),
    }


def delong_test(y: Any, scores_a: Any, scores_b: Any) -> dict[str, float]:
    """DeLong et al. (1988) test of two correlated AUROCs on the same cases (binary tasks).

    Uses the O(N log N) midrank algorithm of Sun & Xu (2014): the structural components
    V10 (per positive: share of negatives scored lower, ties 1/2) and V01 (per negative: share of
    positives scored higher) come from the midranks of each score vector within the positives,
    within the negatives and over all cases. The variance of AUROC_a - AUROC_b is
    S10/m + S01/n with S10, S01 the 2x2 covariances of the components; z is the difference over
    its standard error and the p-value is two-sided (normal). Identical scores give z = 0, p = 1.
    Scores are used as given (float64), not rounded to float32.
    """
    yy = np.asarray(y)
    if yy.ndim == 2 and yy.shape[1] == 1:
        yy = yy[:, 0]
    if yy.ndim != 1 or not np.isin(yy, (0, 1)).all():
        raise ValueError(
            "delong_test needs binary targets: y of shape (N,) holding only 0/1 "
            f"(got shape {yy.shape} with values {np.unique(yy)[:10].tolist()}); for multiclass or "
            "multilabel tasks use paired_difference"
        )
    scores = []
    for s in (scores_a, scores_b):
        s = np.asarray(s, dtype=np.float64)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.shape != yy.shape:
            raise ValueError(f"scores must have shape {yy.shape} (one per case), got {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        scores.append(s)
    pos = yy == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(f"delong_test needs at least 2 positives and 2 negatives (got {m}, {n})")
    x = np.stack([s[pos] for s in scores])  # (2, m) positives
    z = np.stack([s[~pos] for s in scores])  # (2, n) negatives
    tx = sps.rankdata(x, axis=1)
    tz = sps.rankdata(z, axis=1)
    t_all = sps.rankdata(np.concatenate([x, z], axis=1), axis=1)
    auc = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (t_all[:, :m] - tx) / n
    v01 = 1.0 - (t_all[:, m:] - tz) / m
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    if diff == 0:
        z_stat, p = 0.0, 1.0
    elif var <= 0:
        z_stat, p = math.copysign(math.inf, diff), 0.0
    else:
        z_stat = diff / math.sqrt(var)
        p = float(2 * sps.norm.sf(abs(z_stat)))
    return {
        "auroc_a": float(auc[0]),
        "auroc_b": float(auc[1]),
        "difference": diff,
        "z": float(z_stat),
        "p_value": p,
    }


__all__ = [
    "METRICS",
    "TASK_TYPES",
    "bootstrap_indices",
    "delong_test",
    "metric_replicates",
    "bootstrap_p_value",
    "metric_value",
    "paired_difference",
    "pooled_ci",
]
