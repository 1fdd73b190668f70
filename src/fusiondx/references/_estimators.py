"""The scikit-learn (and scikit-survival) estimators behind every reference, per task type.

Two families, each a small grid tuned on the validation split by the study's metric:

- ``linear``: logistic regression (binary, multiclass; one-vs-rest for multilabel), ridge
  regression, a ridge-penalised Cox model (survival); L2 strength from a 4-point grid;
- ``trees``: histogram gradient boosting, 100 rounds at learning rate 0.1 with 7, 15 or 31
  leaves (classification, regression; one-vs-rest for multilabel); survival falls back to the
  Cox model (scikit-survival's boosted survival trees take minutes where the rest takes seconds).

Grids run from the most to the least regularised, and a tie on validation keeps the earlier,
simpler candidate.
"""

from __future__ import annotations

from typing import Any

ESTIMATOR_LABELS = {
    ("linear", "binary"): "logistic regression", ("linear", "multiclass"): "logistic regression",
    ("linear", "multilabel"): "logistic regression", ("linear", "regression"): "ridge regression",
    ("linear", "survival"): "Cox model", ("trees", "binary"): "gradient boosting",
    ("trees", "multiclass"): "gradient boosting", ("trees", "multilabel"): "gradient boosting",
    ("trees", "regression"): "gradient boosting", ("trees", "survival"): "Cox model",
}
TASK_TYPES = ("binary", "multiclass", "multilabel", "regression", "survival")


def candidates(family: str, task_type: str, seed: int, balanced: bool = False) -> list[tuple[dict[str, Any], Any]]:
    """(params, unfitted estimator) pairs, most regularised first."""
    if task_type == "survival" or (family == "linear" and task_type == "regression"):
        return _linear_other(task_type)
    if family == "linear":
        from sklearn.linear_model import LogisticRegression

        weight = "balanced" if balanced else None
        out = [({"C": c}, LogisticRegression(C=c, max_iter=5000, class_weight=weight)) for c in (0.01, 0.1, 1.0, 10.0)]
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if task_type == "regression" else HistGradientBoostingClassifier
        extra = {} if task_type == "regression" else {"class_weight": "balanced" if balanced else None}
        out = [({"max_leaf_nodes": leaves},
                cls(learning_rate=0.1, max_leaf_nodes=leaves, max_iter=100, l2_regularization=1.0,
                    min_samples_leaf=10, early_stopping=False, random_state=seed, **extra))
               for leaves in (7, 15, 31)]
    if task_type == "multilabel":
        from sklearn.multiclass import OneVsRestClassifier

        out = [(p, OneVsRestClassifier(e)) for p, e in out]
    return out


def _linear_other(task_type: str) -> list[tuple[dict[str, Any], Any]]:
    if task_type == "regression":
        from sklearn.linear_model import Ridge

        return [({"alpha": a}, Ridge(alpha=a)) for a in (100.0, 10.0, 1.0, 0.1)]
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    return [({"alpha": a}, CoxPHSurvivalAnalysis(alpha=a, n_iter=200)) for a in (100.0, 10.0, 1.0, 0.1)]


def fit_target(task_type: str, y: Any) -> Any:
    """Targets as the estimator takes them (scikit-survival: a structured event/time array)."""
    import numpy as np

    if task_type == "survival":
        from sksurv.util import Surv

        return Surv.from_arrays(event=np.asarray(y)[:, 1] > 0, time=np.asarray(y)[:, 0])
    if task_type in ("binary", "multiclass"):
        return np.asarray(y).astype(int)
    return np.asarray(y)


def outputs(estimator: Any, X: Any, task_type: str, n_classes: int) -> Any:
    """Per case: positive-class probability (binary), class probabilities (N, K) (multiclass,
    multilabel), the value (regression) or the risk score, higher = earlier event (survival)."""
    import numpy as np

    if task_type == "binary":
        proba = estimator.predict_proba(X)
        return proba[:, list(estimator.classes_).index(1)] if 1 in estimator.classes_ else np.zeros(len(proba))
    if task_type == "multiclass":
        proba = estimator.predict_proba(X)
        out = np.zeros((len(proba), n_classes))
        out[:, np.asarray(estimator.classes_, dtype=int)] = proba  # a class unseen in train: 0
        return out
    if task_type == "multilabel":
        return np.asarray(estimator.predict_proba(X))
    return np.asarray(estimator.predict(X), dtype=np.float64)
