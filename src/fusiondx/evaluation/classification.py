"""Classification metrics of many bootstrap replicates at once, in numpy, as study scorers.

The metrics are the ones of :mod:`fusiondx.evaluation.metrics` (torchmetrics) re-implemented in
numpy so that 1000 replicates cost milliseconds: the confusion counts of all replicates come
from one bincount, and AUROC / AUPRC from the multiplicity of every case in every replicate
summed per group of equal scores in one global sort of the scores (ties grouped as in
torchmetrics), so nothing is sorted per replicate. As in ``metrics.py``, probabilities are
compared in float32 (what the models output), classes are predicted with threshold 0.5
(binary, multilabel) or argmax (multiclass) unless the model's own calls are given (``pred``:
a run's calls at its validation-chosen threshold), and precision/recall/F1 are macro over classes
(over the two classes for binary tasks), with torchmetrics' zero-division rule (0) and its rule
of leaving out of a multiclass macro average a class that is neither present nor predicted.

One deliberate difference: a class/label whose one-vs-rest AUROC (no positives or no negatives)
or AUPRC (no positives) is undefined is NaN and left out of the macro average, whereas
torchmetrics scores such a class 0 (AUROC) or 0 (AUPRC of a label without positives). On test
sets where every class/label has positives and negatives the values are identical; on bootstrap
replicates that happen to lose a rare class, counting it as 0 would bias the interval downwards.
A metric undefined on a whole sample (e.g. AUROC with one class present) is NaN.

:func:`scorer` turns one model's predictions into a :data:`~fusiondx.evaluation.bootstrap.Scorer`
for the confidence intervals and paired tests of :mod:`fusiondx.evaluation.bootstrap`;
:func:`strata` is what those resample within.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.evaluation.bootstrap import Scorer

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


def _pred(pred: Any, task_type: str, shape: tuple[int, ...]) -> np.ndarray:
    """Given class calls: (N,) class indices, or (N, K) 0/1 for multilabel."""
    c = np.asarray(pred)
    want = shape if task_type == "multilabel" else (shape[0],)
    if c.shape != want:
        raise ValueError(f"pred must have shape {want}, got {c.shape}")
    return c.astype(np.int64)


class _Case:
    """Targets and probabilities of one model on the test cases, in the form the metrics use.

    ``pred`` (optional) are the model's class calls, e.g. at a threshold chosen on validation;
    without it classes are called at 0.5 (binary, multilabel) or by argmax (multiclass).
    """

    def __init__(self, y: Any, probs: Any, task_type: str, pred: Any = None) -> None:
        t = _targets(y, task_type)
        n = t.shape[0]
        p = _probs(probs, task_type, n)
        given = None if pred is None else _pred(pred, task_type, p.shape)
        self.task_type = task_type
        self.n = n
        if task_type == "binary":
            if t.size and t.max() > 1:
                raise ValueError("binary y must hold only 0/1")
            pred = (p[:, 0] > _THRESHOLD).astype(np.int64) if given is None else given
            self.k = 2
            self.codes = t * 2 + pred  # (N,) true * K + predicted
            self.scores = p  # (N, 1)
            self.score_truth = (t == 1).astype(np.float64)[:, None]
        elif task_type == "multiclass":
            k = p.shape[1]
            if t.size and t.max() >= k:
                raise ValueError(f"y holds class {t.max()} but probs have only {k} columns")
            self.k = k
            called = np.argmax(p, axis=1) if given is None else given  # first maximum, as torch
            self.codes = t * k + called
            self.scores = p
            self.score_truth = np.eye(k)[t]
        else:
            if t.shape[1] != p.shape[1]:
                raise ValueError(f"y has {t.shape[1]} labels but probs have {p.shape[1]}")
            k = t.shape[1]
            self.k = k
            pred = (p > _THRESHOLD).astype(np.int64) if given is None else given
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


def _replicates(name: str, case: _Case, idx: np.ndarray) -> np.ndarray:
    """The metric of one case set on every replicate: (B,)."""
    out = np.empty(idx.shape[0])
    rankings = _rankings(case) if name in _RANKING else None
    step = max(1, _BLOCK_CELLS // max(idx.shape[1] * case.k, 1))
    for lo in range(0, idx.shape[0], step):
        block = idx[lo : lo + step]
        if rankings is not None:
            out[lo : lo + step] = _ranking_metric(name, case, rankings, block)
        else:
            out[lo : lo + step] = _threshold_metric(name, case, block)
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def scorer(name: str, y: Any, probs: Any, task_type: str, pred: Any = None) -> Scorer:
    """The metric ``name`` of one model's probabilities as a :data:`Scorer`.

    ``pred``: the model's class calls (binary, multiclass: (N,) class indices; multilabel:
    (N, K) 0/1), e.g. at its validation-chosen threshold; threshold metrics count them instead
    of calling classes at 0.5. Ranking metrics (AUROC, AUPRC) use the probabilities.

    ``score(None)`` is the metric on all cases (a float, equal to ``classification_metrics``:
    see the module docstring); ``score(idx)`` the metric on each resample ``idx[b]`` of the
    cases, (n_boot,), NaN where undefined. The inputs are checked here, once.
    """
    _check_name(name)
    case = _Case(y, probs, task_type, pred)

    def score(idx: np.ndarray | None) -> Any:
        if idx is None:
            return float(_replicates(name, case, np.arange(case.n)[None, :])[0])
        return _replicates(name, case, _check_idx(idx, case.n))

    return score


def metric_value(name: str, y: Any, probs: Any, task_type: str, pred: Any = None) -> float:
    """One metric on all cases; equals ``classification_metrics`` (see the module docstring)."""
    return float(scorer(name, y, probs, task_type, pred)(None))


def metric_replicates(name: str, y: Any, probs: Any, task_type: str, idx: Any) -> np.ndarray:
    """The metric on each resample ``idx[b]`` of the cases: (n_boot,), NaN where undefined."""
    return np.asarray(scorer(name, y, probs, task_type)(idx))


def strata(y: Any, task_type: str) -> np.ndarray | None:
    """What a bootstrap of these targets resamples within: the class of each case for binary and
    multiclass tasks (every replicate keeps the test set's class counts, so AUROC stays defined),
    None for multilabel tasks, whose label sets have no single class to keep."""
    return None if task_type == "multilabel" else _targets(y, task_type)


__all__ = ["METRICS", "TASK_TYPES", "metric_replicates", "metric_value", "scorer", "strata"]
