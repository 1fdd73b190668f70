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

A distilled run records its teacher in ``distillation.json`` (the teacher's folder, a digest of
its weights, alpha and T) when it starts, so ``fit --resume`` of that run scores the same teacher
again and continues *with* it (:func:`resume_soft_targets`); a teacher that is gone or was
retrained since is refused, naming the fix, rather than silently finishing on labels alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fusiondx.config import TrainConfig
from fusiondx.engine.task import FusionTask
from fusiondx.errors import RunError
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo

if TYPE_CHECKING:
    from fusiondx.engine.rundir import RunDir


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
    teacher_sha256: str = ""

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
            "teacher_sha256": self.teacher_sha256,
            "alpha": self.alpha,
            "temperature": self.temperature,
            "tasks": sorted(self.logits),
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def teacher_logits(
    teacher: RunDir, tasks: list[str], alpha: float, temperature: float, progress: bool
) -> SoftTargets:
    """The teacher's raw logits for ``tasks`` on every case of its manifest, decoded with its
    own preprocessing (a teacher sees the inputs it was trained on, whatever the student drops)."""
    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine.inference import predict_outputs

    cfg, model, state = teacher.load()
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=False, progress=progress
    )
    store = prepared.store
    raw = predict_outputs(model, store, np.arange(len(store)), cfg.train.batch_size)
    return SoftTargets(
        {t: raw[t].numpy() for t in tasks},
        np.asarray(store.ids).astype(str),
        alpha,
        temperature,
        teacher=str(teacher.path.resolve()),
        teacher_sha256=_sha256(teacher.weights_file),
    )


def resume_soft_targets(
    run: RunDir, given: SoftTargets | None, progress: bool
) -> SoftTargets | None:
    """The soft labels a resumed run continues with: its recorded teacher's, scored again.

    A run started without a teacher resumes without one (``given`` must then be None); a run
    started with one resumes with the same teacher, alpha and T, or a :class:`RunError` says why
    it cannot.
    """
    import json

    from fusiondx.engine.rundir import RunDir

    file = run.distillation_file
    if not file.is_file():
        if given is not None:
            raise RunError(
                "This run was started without a teacher, so it cannot be resumed as a "
                "distillation.",
                file=run.path,
                fix="resume it with `fusiondx fit CONFIG --resume`, or start the distillation "
                "afresh with `fusiondx distill ... --overwrite`",
            )
        return None
    try:
        record = json.loads(file.read_text())
        teacher = RunDir(Path(record["teacher"]))
        alpha, temperature = float(record["alpha"]), float(record["temperature"])
        tasks = [str(t) for t in record["tasks"]]
    except (ValueError, KeyError, TypeError):
        raise RunError(
            "The run's distillation.json is damaged, so its teacher is unknown.",
            file=file,
            fix="start the distillation afresh with `fusiondx distill ... --overwrite`",
        ) from None
    restart = (
        f"restore the teacher's run folder at '{teacher.path}' unchanged, or start the "
        "distillation afresh with `fusiondx distill TEACHER --student STUDENT --overwrite`"
    )
    if not teacher.weights_file.is_file():
        raise RunError(
            f"This run is distilled from the teacher '{teacher.path}', which has no trained "
            "model any more, so it cannot continue with the teacher.",
            file=teacher.path,
            fix=restart,
        )
    if record.get("teacher_sha256") and _sha256(teacher.weights_file) != record["teacher_sha256"]:
        raise RunError(
            f"The teacher '{teacher.path}' was retrained since this distillation started (its "
            "model.pt changed), so the soft labels would differ.",
            file=teacher.weights_file,
            fix=restart,
        )
    if given is not None and (given.teacher, given.alpha, given.temperature) != (
        str(teacher.path),
        alpha,
        temperature,
    ):
        raise RunError(
            f"This run was started with teacher '{teacher.path}', alpha {alpha:g}, temperature "
            f"{temperature:g}; it cannot be resumed with other settings.",
            file=file,
            fix="resume with the same teacher and settings, or start afresh with --overwrite",
        )
    if progress:
        import sys

        print(
            f"Resuming a distillation: scoring the teacher {teacher.path} again for its soft labels",
            file=sys.stderr,
            flush=True,
        )
    return teacher_logits(teacher, tasks, alpha, temperature, progress)


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
