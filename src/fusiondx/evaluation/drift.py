"""How far one set of cases' embeddings lies from another's: a domain classifier's AUROC.

A logistic regression (standardised inputs) learns to tell the two sets apart; its
cross-validated AUROC is the drift score: 0.5 when the sets are indistinguishable in the
embedding, 1.0 when every case can be told apart. It reads like any AUROC, needs no kernel
bandwidth, and is 0.5 in expectation for two samples of the same distribution (the classes
are balanced by subsampling the larger set).
"""

from __future__ import annotations

import numpy as np


def domain_auroc(
    reference: np.ndarray, other: np.ndarray, *, seed: int = 0, folds: int = 5, cap: int = 2000
) -> float:
    """Cross-validated AUROC of a classifier telling ``other`` (N2, D) from ``reference`` (N1, D).

    Both sets are subsampled to the same size (at most ``cap``); NaN with fewer than ``folds``
    cases in either set.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(reference), len(other), cap)
    if n < folds:
        return float("nan")
    a = reference[rng.choice(len(reference), n, replace=False)]
    b = other[rng.choice(len(other), n, replace=False)]
    x = np.concatenate([a, b]).astype(np.float64)
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    p = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


__all__ = ["domain_auroc"]
