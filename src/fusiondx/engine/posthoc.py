"""Post-hoc layer of a trained classifier: calibration, decision threshold and conformal sets.

``fit`` fits them on the validation outputs of the kept weights (:func:`fit_posthoc`) and stores
them in the run's ``posthoc.json``; ``fit``'s test metrics, ``evaluate``, ``predict``, ``export``
and the study apply them. The maths is in :mod:`fusiondx.evaluation.calibration`,
:mod:`~fusiondx.evaluation.thresholds` and :mod:`~fusiondx.evaluation.conformal`; this module
turns a run's raw outputs (logits per task) into calibrated outputs, the metrics at the stored
threshold, and the predictions-table columns:

- ``<task>_prob_<class>``: calibrated probabilities (what the model's numbers mean);
- ``<task>_prob_raw_<class>``: the probabilities before calibration;
- ``<task>_pred``: the class called at the stored threshold (binary, multilabel) or argmax;
- ``<task>_set``: the conformal prediction set, classes joined by ``|`` (empty: no class);
- ``<task>_refer``: True when the set is not the predicted class alone (refer to an expert).

A run written before this layer existed has no ``posthoc.json``: everything reads as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.config import PosthocConfig
from fusiondx.evaluation import calibration as cal
from fusiondx.evaluation import conformal as conf
from fusiondx.evaluation.metrics import classification_metrics
from fusiondx.evaluation.thresholds import choose_thresholds, predict_classes
from fusiondx.tasks import TaskInfo, task_type

VERSION = 1
SET_SEPARATOR = "|"


def applies(info: TaskInfo) -> bool:
    """Whether the post-hoc layer covers this task (classification types)."""
    return info.type in ("binary", "multiclass", "multilabel")


def _logits(raw: torch.Tensor) -> np.ndarray:
    return raw.detach().double().cpu().numpy().reshape(len(raw), -1)


def fit_posthoc(
    cfg: PosthocConfig,
    tasks: list[TaskInfo],
    heads: dict[str, Any],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Fit calibration, threshold and conformal sets of every classification task on the
    validation ``outputs`` (raw logits) and ``targets``; the content of ``posthoc.json``."""
    out: dict[str, Any] = {"version": VERSION, "fitted_on": "val", "tasks": {}}
    for info in tasks:
        if not applies(info) or info.name not in outputs:
            continue
        z, y = _logits(outputs[info.name]), np.asarray(targets[info.name])
        kind = info.type
        scaling = cal.fit_scaling(z, y, kind) if cfg.calibration == "temperature" else None
        probs = _probs(heads[info.name], cal.apply_scaling(z, scaling, kind), kind)
        rule = cfg.threshold
        chosen = choose_thresholds(probs, y, kind, rule)
        threshold: dict[str, Any] = (
            {"rule": "argmax", "values": None}
            if chosen is None
            else {
                "rule": chosen[0]["rule"] if kind == "binary" else _rule_name(rule),
                "values": [c["value"] for c in chosen],
                "validation": chosen,
            }
        )
        conformal = None
        if cfg.conformal is not None and kind != "multilabel":
            c = cfg.conformal
            conformal = conf.fit_conformal(
                conf.class_probs(probs, kind), y, c.coverage, c.score, c.mondrian
            )
        out["tasks"][info.name] = {
            "type": kind,
            "classes": list(info.classes),
            "n_val": len(y),
            "calibration": scaling,
            "threshold": threshold,
            "conformal": conformal,
        }
    return out


def _rule_name(rule: Any) -> str:
    if isinstance(rule, dict):
        return f"sensitivity >= {rule['sensitivity']:g}"
    return "fixed" if isinstance(rule, float) else str(rule)


def _probs(head: Any, logits: np.ndarray, kind: str) -> np.ndarray:
    """Probabilities of logits as the head makes them (sigmoid or softmax), (N, K)."""
    with torch.no_grad():
        p = head.to_probs(torch.as_tensor(logits, dtype=torch.float32)).double().numpy()
    return p.reshape(len(p), -1)


def _as2d(p: np.ndarray) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    return a.reshape(len(a), -1)


class ProbabilityHead:
    """What the post-hoc layer needs of a head, for a model that outputs probabilities (the
    study's scikit-learn references): logits in, sigmoid / softmax probabilities out."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def to_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1) if self.kind == "multiclass" else logits.sigmoid()

    def logits(self, probs: np.ndarray) -> torch.Tensor:
        """Logits of probabilities (N, K) (binary (N,)), kept finite."""
        p = torch.as_tensor(_as2d(probs)).clamp(1e-30, 1 - 1e-15)
        return p.log() if self.kind == "multiclass" else torch.logit(p)


def describe_threshold(entry: dict[str, Any]) -> str:
    """In words: which threshold a task's numbers use (e.g. for the study table)."""
    t = entry.get("threshold") or {}
    if t.get("rule") == "argmax":
        return "the most probable class (argmax)"
    values = t.get("values") or [0.5]
    shown = f"{values[0]:.3f}" if len(values) == 1 else "one per label"
    rule = str(t.get("rule", "fixed"))
    where = (
        "the fixed threshold"
        if rule.startswith("fixed")
        else f"the validation-chosen {rule} threshold"
    )
    return f"{where} ({shown})"


class Posthoc:
    """A run's fitted post-hoc layer (``posthoc.json``), applied to its raw outputs."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state = state or {}
        self.tasks: dict[str, Any] = dict(self.state.get("tasks") or {})

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def calibrate(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs with every covered task's logits calibrated (others unchanged)."""
        out = dict(outputs)
        for t, entry in self.tasks.items():
            if t in out and entry.get("calibration"):
                z = cal.apply_scaling(_logits(out[t]), entry["calibration"], entry["type"])
                out[t] = torch.as_tensor(z, dtype=torch.float32).reshape(out[t].shape)
        return out

    def thresholds(self, task: str) -> list[float] | None:
        entry = self.tasks.get(task) or {}
        return (entry.get("threshold") or {}).get("values")

    def task_metrics(
        self,
        info: TaskInfo,
        head: Any,
        raw: torch.Tensor,
        calibrated: torch.Tensor,
        y: np.ndarray,
        raw_probs: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """A task's metrics at the stored threshold, with calibration before/after and the
        conformal coverage on these cases. ``raw_probs``: the probabilities before calibration
        where they are known exactly (default: from ``raw``)."""
        entry, kind = self.tasks[info.name], info.type
        p_raw = _probs(head, _logits(raw), kind) if raw_probs is None else _as2d(raw_probs)
        p = _probs(head, _logits(calibrated), kind)
        thr = self.thresholds(info.name)
        m = classification_metrics(
            torch.as_tensor(p, dtype=torch.float32),
            torch.as_tensor(y),
            kind,
            len(info.classes),
            threshold=0.5 if thr is None else thr,
        )
        # AUROC / AUPRC rank the scores before calibration: the model's discrimination, which
        # calibration is not meant to change (saturated probabilities would tie cases).
        ranked = classification_metrics(
            torch.as_tensor(p_raw, dtype=torch.float32), torch.as_tensor(y), kind, len(info.classes)
        )
        m["auroc"], m["auprc"] = ranked["auroc"], ranked["auprc"]
        m["threshold"] = {
            "rule": entry["threshold"]["rule"],
            "values": thr,
            "described": describe_threshold(entry),
        }
        flat = p[:, 0] if kind == "binary" else p
        flat_raw = p_raw[:, 0] if kind == "binary" else p_raw
        m["calibration"] = {
            "method": (entry.get("calibration") or {}).get("method", "none"),
            "before": cal.calibration_summary(flat_raw, y, kind),
            "after": cal.calibration_summary(flat, y, kind),
        }
        if entry.get("conformal"):
            sets = conf.predict_sets(conf.class_probs(flat, kind), entry["conformal"])
            m["conformal"] = {
                "nominal": entry["conformal"]["coverage"],
                **conf.set_report(sets, y, info.classes),
            }
        return m

    def columns(
        self,
        frame: pd.DataFrame,
        info: TaskInfo,
        head: Any,
        raw: torch.Tensor,
        raw_probs: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """The predictions table with a task's post-hoc columns (see the module docstring);
        ``frame`` already holds the calibrated ``_prob_`` columns."""
        entry, kind, t = self.tasks.get(info.name), info.type, info.name
        if entry is None:
            return frame
        probs = task_type(info).frame_probs(info, frame)  # calibrated, as written
        p_raw = _probs(head, _logits(raw), kind) if raw_probs is None else _as2d(raw_probs)
        pred = predict_classes(probs, kind, self.thresholds(t))
        new: dict[str, Any] = {}
        shown = [info.classes[1]] if kind == "binary" else list(info.classes)
        for k, c in enumerate(shown):
            new[f"{t}_prob_raw_{c}"] = p_raw[:, k]
        if kind == "multilabel":
            new[f"{t}_pred"] = [
                ";".join(c for c, on in zip(info.classes, row, strict=True) if on) or "none"
                for row in pred
            ]
        else:
            new[f"{t}_pred"] = [info.classes[int(k)] for k in pred]
        if entry.get("conformal"):
            sets = conf.predict_sets(conf.class_probs(probs, kind), entry["conformal"])
            new[f"{t}_set"] = [
                SET_SEPARATOR.join(c for c, on in zip(info.classes, row, strict=True) if on)
                for row in sets
            ]
            alone = (sets.sum(axis=1) == 1) & (sets[np.arange(len(pred)), pred] == 1)
            new[f"{t}_refer"] = ~alone
        out = frame.copy()
        pos = list(out.columns).index(f"{t}_pred")
        out = out.drop(columns=[f"{t}_pred"])
        for offset, (name, values) in enumerate(new.items()):
            out.insert(pos + offset, name, values)
        return out


def apply(
    post: Posthoc,
    model: Any,
    tasks: list[TaskInfo],
    outputs: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """``outputs`` calibrated by ``post`` (returned unchanged when the run has no posthoc.json)."""
    return post.calibrate(outputs) if post else outputs


def with_metrics(
    post: Posthoc,
    model: Any,
    tasks: list[TaskInfo],
    metrics: dict[str, dict[str, Any]],
    raw: dict[str, torch.Tensor],
    calibrated: dict[str, torch.Tensor],
    targets: dict[str, np.ndarray],
) -> dict[str, dict[str, Any]]:
    """The heads' metrics with every covered task's replaced by :meth:`Posthoc.task_metrics`."""
    out = dict(metrics)
    for info in tasks:
        if info.name in post.tasks:
            out[info.name] = post.task_metrics(
                info,
                model.task_head(info.name),
                raw[info.name],
                calibrated[info.name],
                targets[info.name],
            )
    return out


def with_columns(
    post: Posthoc,
    model: Any,
    tasks: list[TaskInfo],
    frame: pd.DataFrame,
    raw: dict[str, torch.Tensor],
) -> pd.DataFrame:
    """The predictions table with every covered task's post-hoc columns."""
    for info in tasks:
        frame = post.columns(frame, info, model.task_head(info.name), raw[info.name])
    return frame
