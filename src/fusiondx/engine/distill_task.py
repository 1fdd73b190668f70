"""Knowledge distillation inside the normal training: a teacher's soft labels as a per-case input.

Hinton et al. (2015), "Distilling the knowledge in a neural network": the student learns from
the teacher's probabilities softened by a temperature ``T`` as well as from the true labels,

    loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * task loss,

where ``p_T`` is the softmax (multiclass) or sigmoid (binary, multilabel: one Bernoulli per
label) of ``logits / T``; ``T^2`` keeps the soft term's gradients on the scale of the hard one's
as ``T`` grows. The teacher's logits are computed once, before training, on every case of the
student's manifest (:class:`SoftTargets`), and looked up by each batch's store index, so the
teacher costs nothing per step and modality dropout hides inputs from the student only.
Validation and the kept epoch use the task losses alone, as for any run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fusiondx.config import TrainConfig
from fusiondx.engine.task import FusionTask
from fusiondx.errors import RunError
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo


@dataclass
class SoftTargets:
    """A teacher's raw logits per task for the cases ``case_ids`` (rows in that order).

    Args:
        logits: task -> (cases, outputs) raw (uncalibrated) logits of the teacher.
        case_ids: the case id of each row.
        alpha: weight of the distillation term (0: the task loss alone; 1: the teacher alone).
        temperature: softening of both the teacher's and the student's logits (> 0).
        teacher: where the logits came from (the teacher's run folder), for metrics.json.
    """

    logits: dict[str, np.ndarray]
    case_ids: np.ndarray
    alpha: float
    temperature: float
    teacher: str = ""

    def aligned(self, ids: Sequence[str] | np.ndarray) -> dict[str, torch.Tensor]:
        """The logits in the order of ``ids`` (a store's cases); a RunError names a case the
        teacher did not score."""
        row = {str(c): i for i, c in enumerate(self.case_ids)}
        missing = [str(c) for c in ids if str(c) not in row]
        if missing:
            raise RunError(
                f"The teacher has no soft labels for {len(missing)} of the student's cases.",
                case_id=missing[0],
                fix="train the student on the teacher's manifest",
            )
        order = np.array([row[str(c)] for c in ids], dtype=np.int64)
        return {
            t: torch.from_numpy(np.asarray(v, np.float32)[order]) for t, v in self.logits.items()
        }

    def describe(self) -> dict[str, Any]:
        return {
            "teacher": self.teacher,
            "alpha": self.alpha,
            "temperature": self.temperature,
            "tasks": sorted(self.logits),
        }


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, task_type: str, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(teacher_T || student_T)``, averaged over cases (and labels, for Bernoullis)."""
    t = float(temperature)
    s, q = student / t, teacher.to(student.dtype) / t
    if task_type == "multiclass":
        p = q.softmax(-1)
        kl = (p * (q.log_softmax(-1) - s.log_softmax(-1))).sum(-1).mean()
    else:  # binary (one logit) and multilabel: independent Bernoullis
        q, s = q.reshape(s.shape), s
        p = torch.sigmoid(q)
        kl = (
            p * (F.logsigmoid(q) - F.logsigmoid(s))
            + (1 - p) * (F.logsigmoid(-q) - F.logsigmoid(-s))
        ).mean()
    return kl * t * t


class DistillTask(FusionTask):
    """:class:`FusionTask` whose training loss mixes in the teacher's soft labels per task.

    ``soft`` holds the teacher's logits aligned with the training store (row = store index).
    Tasks without soft labels keep their plain loss.
    """

    def __init__(
        self,
        model: MultimodalModel,
        tasks: Sequence[TaskInfo],
        train: TrainConfig,
        task_weights: dict[str, float] | None,
        soft: dict[str, torch.Tensor],
        alpha: float,
        temperature: float,
        seed: int = 0,
    ) -> None:
        super().__init__(model, tasks, train, task_weights, seed=seed)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.soft = soft
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    def _train_losses(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[torch.Tensor]:
        hard = self._losses(outputs, batch["targets"])
        rows = batch["index"].cpu()
        out = []
        for t, loss in zip(self.tasks, hard, strict=True):
            if t.name not in self.soft:
                out.append(loss)
                continue
            teacher = self.soft[t.name][rows].to(outputs[t.name].device)
            kd = distillation_loss(outputs[t.name], teacher, t.type, self.temperature)
            out.append(self.alpha * kd + (1.0 - self.alpha) * loss)
        return out
