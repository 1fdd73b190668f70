"""What binary, multiclass and multilabel classification share: one head, classes fixed before
training, probabilities as outputs, the study's numpy metrics of bootstrap replicates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from fusiondx.errors import ConfigError, DataError, case_of, line_of
from fusiondx.tasks._base import LabelSource, Scorer, TaskInfo, TaskType, label_columns

if TYPE_CHECKING:
    from fusiondx.config import Config, TaskConfig

# Spelled-out negatives: with two classes and no declared order, these are the negative class.
_NEGATIVE_NAMES = {
    "0",
    "false",
    "no",
    "negative",
    "neg",
    "healthy",
    "normal",
    "none",
    "control",
    "absent",
    "benign",
    "n",
}


class Classification(TaskType):
    """Base of the classification types: the ``classification`` head, classes, probabilities.

    Which of the three a task is, is read from the config and the labels by :meth:`infer` (the
    same for all three): a list of label columns or a ``label_separator`` is multilabel, two
    classes binary, more multiclass, unless ``tasks[].type`` says so.
    """

    heads = ("classification",)
    is_classification = True
    checked_per_cell = True
    metrics: ClassVar[tuple[str, ...]] = (
        "precision",
        "accuracy",
        "f1",
        "recall",
        "auroc",
        "auprc",
        "balanced_accuracy",
        "specificity",
    )
    table_metrics = ("precision", "accuracy", "f1", "recall", "auroc", "auprc")
    estimator_labels: ClassVar[dict[str, str]] = {
        "linear": "logistic regression",
        "trees": "gradient boosting",
    }

    # ------------------------------------------------------------------ data

    def infer(self, task: TaskConfig, df: pd.DataFrame, cfg: Config | None) -> TaskInfo:
        cols = label_columns(task)
        # A list of label columns, even of one, means one 0/1 column per class; a single column
        # name means the classes are written in the cell (split by label_separator).
        per_column = not isinstance(task.label, str) and task.label_separator is None
        if task.type == "multilabel" or len(cols) > 1 or task.label_separator is not None:
            if per_column:
                classes = tuple(task.classes or cols)
                if len(classes) != len(cols):
                    raise ConfigError(
                        f"Task '{task.name}' lists {len(classes)} classes for {len(cols)} label columns.",
                        fix="give one class name per label column, or omit classes",
                    )
            else:
                sep = task.label_separator or ";"
                seen = sorted(
                    {
                        p.strip()
                        for v in df[cols[0]].dropna()
                        for p in str(v).split(sep)
                        if p.strip()
                    }
                )
                classes = tuple(task.classes or [c for c in seen if c.lower() != "none"])
            return TaskInfo(
                task.name,
                "multilabel",
                classes,
                cols,
                None if per_column else task.label_separator or ";",
            )
        values = df[cols[0]].dropna().astype(str).str.strip()
        if task.classes:
            classes = tuple(task.classes)
        else:
            uniq = sorted(values.unique())
            if len(uniq) == 2 and task.positive_class is None:
                neg = [u for u in uniq if u.lower() in _NEGATIVE_NAMES]
                if len(neg) == 1:
                    uniq = [neg[0], next(u for u in uniq if u != neg[0])]
            classes = tuple(uniq)
        if task.positive_class is not None:
            if task.positive_class not in classes or len(classes) != 2:
                raise ConfigError(
                    f"positive_class '{task.positive_class}' of task '{task.name}' is not one of two classes {list(classes)}.",
                    fix="name one of the two classes, or drop positive_class for multiclass tasks",
                )
            classes = tuple(c for c in classes if c != task.positive_class) + (task.positive_class,)
        if len(classes) < 2:
            raise DataError(
                f"Task '{task.name}' has only one class ({list(classes)}) in column '{cols[0]}'.",
                column=cols[0],
                fix="a classifier needs at least two classes in the labels",
            )
        ttype = task.type or ("binary" if len(classes) == 2 else "multiclass")
        if ttype == "binary" and len(classes) != 2:
            raise ConfigError(
                f"Task '{task.name}' is declared binary but has {len(classes)} classes {list(classes)}.",
                fix="set type: multiclass, or declare two classes",
            )
        return TaskInfo(task.name, ttype, classes, cols)

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        """(N,) class indices; a label outside the declared classes is an error."""
        df, ids = src.df, src.ids
        col = info.label[0]
        empty = df[col].isna().to_numpy()
        values = df[col].astype(str).str.strip().to_numpy()
        index = {c: i for i, c in enumerate(info.classes)}
        out = np.zeros(len(values), dtype=np.int64)
        for pos, v in enumerate(values):
            if v in index:
                out[pos] = index[v]
            elif not (errors is not None and empty[pos]):
                _report(
                    errors,
                    DataError(
                        f"The label '{v}' is not one of the declared classes {list(info.classes)}.",
                        row=line_of(pos),
                        column=col,
                        case_id=case_of(ids, pos),
                        fix="correct the label, or add the class to tasks[].classes",
                    ),
                )
        return out

    def stratification_key(self, info: TaskInfo, y: np.ndarray) -> np.ndarray:
        return y.astype(np.int64).astype(str)

    def stratum_names(self, info: TaskInfo) -> dict[str, str] | None:
        return {str(k): c for k, c in enumerate(info.classes)}

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(np.unique(y)) < 2:
            only = info.classes[int(y[0])] if len(y) else "?"
            raise DataError(
                f"The training split of task '{info.name}' holds a single class ('{only}').",
                fix="add cases of the other classes, or fix the split column so train has every class",
            )

    def split_counts(self, info: TaskInfo, y: np.ndarray) -> dict[str, int]:
        return {c: int((y == k).sum()) for k, c in enumerate(info.classes)}

    # ------------------------------------------------------------------ model

    def head_output(self, info: TaskInfo, head: Any, raw: Any) -> np.ndarray:
        return head.to_probs(raw).numpy()

    def balanced_weights(self, info: TaskInfo, y: np.ndarray) -> list[float]:
        k = len(info.classes)
        counts = np.bincount(y.astype(int), minlength=k)
        return [float(len(y) / (k * max(c, 1))) for c in counts]

    # ------------------------------------------------------------------ evaluation

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        import torch

        from fusiondx.evaluation.metrics import classification_metrics

        probs = torch.as_tensor(np.asarray(output, dtype=np.float32).reshape(len(output), -1))
        return classification_metrics(probs, torch.as_tensor(y), info.type, len(info.classes))

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        """``t_true``, ``t_prob_<class>`` per class, ``t_pred``."""
        probs = np.asarray(output).reshape(len(output), -1)
        t = info.name
        cols: dict[str, Any] = {}
        if y is not None:
            cols[f"{t}_true"] = [info.classes[int(v)] for v in y]
        for k, c in enumerate(info.classes):
            cols[f"{t}_prob_{c}"] = probs[:, k]
        cols[f"{t}_pred"] = [info.classes[int(k)] for k in probs.argmax(1)]
        return cols

    def output_columns(self, info: TaskInfo, frame: pd.DataFrame) -> list[str]:
        # The calibrated probabilities only; ``_prob_raw_`` columns hold them before calibration.
        return [f"{info.name}_prob_{c}" for c in info.classes if f"{info.name}_prob_{c}" in frame]

    def frame_truth(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        """The targets of a predictions table: class indices (N,) (multilabel: 0/1 (N, K))."""
        index = {c: k for k, c in enumerate(info.classes)}
        return frame[f"{info.name}_true"].astype(str).map(index).to_numpy().astype(int)

    def frame_probs(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        """The probabilities of a predictions table: (N, K) (binary: (N,), the positive class)."""
        return frame[[f"{info.name}_prob_{c}" for c in info.classes]].to_numpy(float)

    def frame_calls(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        """The class calls a run made at its stored threshold (``t_pred`` of a run with a
        post-hoc layer: class indices (N,), multilabel 0/1 (N, K)); None for a table written
        without one, whose classes are called at 0.5 / argmax from the probabilities."""
        t = info.name
        if not any(c.startswith(f"{t}_prob_raw_") for c in frame.columns):
            return None
        pred = frame[f"{t}_pred"].fillna("").astype(str)
        if info.type == "multilabel":
            return np.array([[int(c in set(v.split(";"))) for c in info.classes] for v in pred])
        index = {c: k for k, c in enumerate(info.classes)}
        return pred.map(index).to_numpy().astype(int)

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.classification import scorer

        y = self.frame_truth(info, frame)
        calls = self.frame_calls(info, frame)
        # With a post-hoc layer the threshold metrics count the run's calls, and AUROC / AUPRC
        # rank its scores before calibration (calibration is fitted to be monotone where it can,
        # but saturating probabilities would tie cases, and vector scaling may reorder them).
        p = self.frame_probs(info, frame) if calls is None else self.frame_raw_probs(info, frame)
        return {m: scorer(m, y, p, info.type, calls) for m in self.metrics}

    def frame_raw_probs(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray:
        """The probabilities before calibration of a table with a post-hoc layer (``_prob_raw_``)."""
        if info.type == "binary":  # one column, of the positive class, as frame_probs
            return frame[f"{info.name}_prob_raw_{info.classes[1]}"].to_numpy(float)
        return frame[[f"{info.name}_prob_raw_{c}" for c in info.classes]].to_numpy(float)

    def strata(self, info: TaskInfo, frame: pd.DataFrame) -> np.ndarray | None:
        return self.frame_truth(info, frame)  # each replicate keeps the test set's class counts

    def score(self, info: TaskInfo, head: Any, raw: Any, y: np.ndarray, metric: str) -> float:
        from fusiondx.evaluation.classification import metric_value

        return metric_value(metric, y, head.to_probs(raw).numpy(), info.type)

    # ------------------------------------------------------------------ references

    def estimators(
        self, family: str, seed: int, balanced: bool
    ) -> list[tuple[dict[str, Any], Any]]:
        """``linear``: logistic regression, C from a 4-point grid; ``trees``: histogram gradient
        boosting, 100 rounds at learning rate 0.1 with 7, 15 or 31 leaves."""
        if family == "linear":
            from sklearn.linear_model import LogisticRegression

            weight = "balanced" if balanced else None
            return [
                ({"C": c}, LogisticRegression(C=c, max_iter=5000, class_weight=weight))
                for c in (0.01, 0.1, 1.0, 10.0)
            ]
        from sklearn.ensemble import HistGradientBoostingClassifier

        return [
            (
                {"max_leaf_nodes": leaves},
                HistGradientBoostingClassifier(
                    learning_rate=0.1,
                    max_leaf_nodes=leaves,
                    max_iter=100,
                    l2_regularization=1.0,
                    min_samples_leaf=10,
                    early_stopping=False,
                    random_state=seed,
                    class_weight="balanced" if balanced else None,
                ),
            )
            for leaves in (7, 15, 31)
        ]

    def fit_target(self, y: np.ndarray) -> Any:
        return np.asarray(y).astype(int)

    def stacking(
        self, estimators: list[tuple[str, Any]], cv: Any
    ) -> list[tuple[dict[str, Any], Any]]:
        from sklearn.ensemble import StackingClassifier
        from sklearn.linear_model import LogisticRegression

        return [
            (
                {},
                StackingClassifier(
                    estimators,
                    final_estimator=LogisticRegression(max_iter=5000),
                    cv=cv,
                    stack_method="predict_proba",
                ),
            )
        ]


def _report(errors: list[DataError] | None, err: DataError) -> None:
    if errors is None:
        raise err
    errors.append(err)
