"""Calibration of predicted probabilities: how far they are from observed frequencies, and
temperature / vector scaling to bring them closer (Guo et al., 2017, "On Calibration of Modern
Neural Networks").

What is measured, per task type:

- **binary**: the positive-class probability against the 0/1 outcome;
- **multiclass**: the top-label confidence (highest probability) against whether that class
  is right (as torchmetrics' ``multiclass_calibration_error``);
- **multilabel**: each label as a binary task, averaged over the labels.

ECE with fixed bins (equal width over [0, 1], torchmetrics ``CalibrationError``, L1) and with
adaptive bins (equal mass: each bin holds the same number of cases; Nixon et al., 2019, which
torchmetrics lacks). Brier score from scikit-learn (multiclass: summed over the classes).

Scaling is fitted on validation logits by minimising the negative log-likelihood with L-BFGS in
float64 (deterministic on CPU): one temperature for a binary task, one per label for a
multilabel task, and for a multiclass task vector scaling, a scale and a bias per class
(``z * scale + bias``). A temperature > 1 softens over-confident probabilities.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

N_BINS = 10
_MAX_LOGIT = 1e4  # logits of probability 0 or 1 stay finite


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -_MAX_LOGIT, _MAX_LOGIT)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def confidence_outcome(probs: Any, y: Any, task_type: str) -> tuple[np.ndarray, np.ndarray]:
    """What calibration compares: (confidence, outcome) per case, flattened over labels.

    Binary: the positive-class probability and the 0/1 truth; multiclass: the highest probability
    and whether its class is the truth; multilabel: every (case, label) as a binary case.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y)
    if task_type == "multiclass":
        return p.max(axis=1), (p.argmax(axis=1) == t.astype(int)).astype(np.float64)
    return p.reshape(-1), t.reshape(-1).astype(np.float64)


def ece_fixed(probs: Any, y: Any, task_type: str, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins (torchmetrics, L1 norm)."""
    import torchmetrics.functional.classification as tmf

    p = torch.as_tensor(np.asarray(probs, dtype=np.float32))
    t = torch.as_tensor(np.asarray(y)).long()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task_type == "binary":
            v = tmf.binary_calibration_error(p.reshape(-1), t.reshape(-1), n_bins=n_bins)
        elif task_type == "multiclass":
            v = tmf.multiclass_calibration_error(p, t, num_classes=p.shape[1], n_bins=n_bins)
        else:  # each label a binary task
            v = torch.stack(
                [
                    tmf.binary_calibration_error(p[:, k], t[:, k], n_bins=n_bins)
                    for k in range(p.shape[1])
                ]
            ).mean()
    return float(v)


def _equal_mass_bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each case: cases sorted by confidence, cut into ``n_bins`` near-equal parts
    (ties in sort order kept stable, so the binning is deterministic)."""
    order = np.argsort(conf, kind="stable")
    bins = np.empty(len(conf), dtype=np.int64)
    bins[order] = np.minimum(np.arange(len(conf)) * n_bins // max(len(conf), 1), n_bins - 1)
    return bins


def _adaptive_one(conf: np.ndarray, out: np.ndarray, n_bins: int) -> float:
    if len(conf) == 0:
        return float("nan")
    bins = _equal_mass_bins(conf, min(n_bins, len(conf)))
    count = np.bincount(bins)
    gap = np.abs(np.bincount(bins, conf) - np.bincount(bins, out))
    return float(gap[count > 0].sum() / len(conf))


def ece_adaptive(probs: Any, y: Any, task_type: str, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins (each holds ~N / n_bins cases)."""
    if task_type == "multilabel":
        p, t = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return float(np.mean([_adaptive_one(p[:, k], t[:, k], n_bins) for k in range(p.shape[1])]))
    conf, out = confidence_outcome(probs, y, task_type)
    return _adaptive_one(conf, out, n_bins)


def brier(probs: Any, y: Any, task_type: str) -> float:
    """Brier score (scikit-learn): mean squared distance of the probabilities from the truth,
    summed over the classes for a multiclass task, averaged over the labels for multilabel."""
    from sklearn.metrics import brier_score_loss

    p, t = np.asarray(probs, dtype=np.float64), np.asarray(y)
    if task_type == "binary":
        return float(brier_score_loss(t.reshape(-1), p.reshape(-1), labels=[0, 1]))
    if task_type == "multiclass":  # rows renormalised: float32 sums miss 1 by ~1e-7
        p = p / p.sum(axis=1, keepdims=True)
        return float(brier_score_loss(t.astype(int), p, labels=list(range(p.shape[1]))))
    return float(
        np.mean([brier_score_loss(t[:, k], p[:, k], labels=[0, 1]) for k in range(p.shape[1])])
    )


def calibration_summary(
    probs: Any, y: Any, task_type: str, n_bins: int = N_BINS
) -> dict[str, float]:
    """``ece`` (fixed bins), ``ece_adaptive`` and ``brier`` of these probabilities."""
    return {
        "ece": ece_fixed(probs, y, task_type, n_bins),
        "ece_adaptive": ece_adaptive(probs, y, task_type, n_bins),
        "brier": brier(probs, y, task_type),
    }


def reliability(
    probs: Any, y: Any, task_type: str, n_bins: int = N_BINS, adaptive: bool = False
) -> dict[str, list[float]]:
    """Reliability-diagram data: per non-empty bin the mean confidence, the observed frequency
    (fraction positive, or accuracy for multiclass) and the number of cases."""
    conf, out = confidence_outcome(probs, y, task_type)
    if adaptive:
        bins = _equal_mass_bins(conf, min(n_bins, max(len(conf), 1)))
    else:
        bins = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    safe = np.maximum(count, 1)
    return {
        "mean_predicted": (np.bincount(bins, conf, n_bins) / safe)[keep].tolist(),
        "observed": (np.bincount(bins, out, n_bins) / safe)[keep].tolist(),
        "count": count[keep].astype(int).tolist(),
    }


# --------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------


def fit_scaling(logits: Any, y: Any, task_type: str, max_iter: int = 200) -> dict[str, Any]:
    """Fit temperature (binary: one; multilabel: one per label) or vector scaling (multiclass:
    per-class scale and bias) on validation ``logits`` (N, K) (binary (N,) or (N, 1)) by
    minimising the NLL with L-BFGS. Returns the parameters as JSON-ready lists, with the NLL
    before and after; apply them with :func:`apply_scaling`.

    A fit that would not lower the NLL (too few cases, one class) keeps the identity.
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64)).clamp(-_MAX_LOGIT, _MAX_LOGIT)
    t = torch.as_tensor(np.asarray(y, dtype=np.float64))
    if task_type == "binary":
        z, t = z.reshape(-1, 1), t.reshape(-1, 1)
    k = z.shape[1]
    multiclass = task_type == "multiclass"
    log_scale = torch.zeros(
        k if multiclass or task_type == "multilabel" else 1, dtype=torch.float64
    )
    bias = torch.zeros(k, dtype=torch.float64)
    log_scale.requires_grad_(True)
    params = [log_scale]
    if multiclass:
        bias.requires_grad_(True)
        params.append(bias)

    def nll() -> torch.Tensor:
        if multiclass:
            return F.cross_entropy(z * log_scale.exp() + bias, t.long())
        return F.binary_cross_entropy_with_logits(z * log_scale.exp(), t)

    with torch.no_grad():
        before = float(nll())
    opt = torch.optim.LBFGS(
        params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    if len(z) >= 2:
        opt.step(closure)
    with torch.no_grad():
        after = float(nll())
        ok = bool(torch.isfinite(log_scale).all() and torch.isfinite(bias).all())
        if not ok or not after <= before:
            log_scale.zero_()
            bias.zero_()
            after = before
    scale = log_scale.detach().exp().tolist()
    out: dict[str, Any] = {"nll_before": before, "nll_after": after}
    if multiclass:
        out |= {"method": "vector", "scale": scale, "bias": bias.detach().tolist()}
    else:  # temperature T: z / T
        out |= {"method": "temperature", "temperature": [1.0 / s for s in scale]}
    return out


def apply_scaling(logits: Any, params: dict[str, Any] | None, task_type: str) -> np.ndarray:
    """Logits after the scaling :func:`fit_scaling` fitted (unchanged when ``params`` is None)."""
    z = np.asarray(logits, dtype=np.float64)
    if not params:
        return z
    if params["method"] == "vector":
        return z * np.asarray(params["scale"]) + np.asarray(params["bias"])
    temp = np.asarray(params["temperature"])
    return z / (temp[0] if task_type == "binary" else temp)


def to_probs(logits: Any, task_type: str) -> np.ndarray:
    """Probabilities of logits: softmax for multiclass, sigmoid otherwise."""
    z = np.asarray(logits, dtype=np.float64)
    return _softmax(z) if task_type == "multiclass" else _sigmoid(z)


__all__ = [
    "N_BINS",
    "apply_scaling",
    "brier",
    "calibration_summary",
    "confidence_outcome",
    "ece_adaptive",
    "ece_fixed",
    "fit_scaling",
    "reliability",
    "to_probs",
]
