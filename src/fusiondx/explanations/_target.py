"""What an explanation explains: one class's predicted probability, as a differentiable function
of one modality's input with everything else of the case held fixed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fusiondx.errors import RunError
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo, task_type


@dataclass(frozen=True)
class Target:
    """The task and class whose probability is explained.

    Attributes:
        info: the task.
        index: the class (multilabel: the label) whose probability is explained.
    """

    info: TaskInfo
    index: int

    @property
    def name(self) -> str:
        """The class name."""
        return str(self.info.classes[self.index])


def classification_task(infos: list[TaskInfo], task: str | None) -> TaskInfo:
    """The task to explain: ``task`` by name, or the first classification task of the run."""
    if task is not None:
        found = next((t for t in infos if t.name == task), None)
        if found is None:
            raise RunError(
                f"The run has no task '{task}'.",
                fix=f"use one of: {', '.join(t.name for t in infos)}",
            )
        infos = [found]
    for t in infos:
        if task_type(t).is_classification:
            return t
    raise RunError(
        f"Explanations are for classification tasks; task '{infos[0].name}' is {infos[0].type}.",
        fix="explain a run with a binary, multiclass or multilabel task",
    )


def resolve_class(info: TaskInfo, wanted: str | None, probs: np.ndarray) -> int:
    """The class explained: ``wanted`` by name, else the positive class of a binary task, else the
    most probable class (``probs`` (K,) of the case)."""
    classes = [str(c) for c in info.classes]
    if wanted is not None:
        if wanted not in classes:
            raise RunError(
                f"Task '{info.name}' has no class '{wanted}'.",
                fix=f"use one of: {', '.join(classes)}",
            )
        return classes.index(wanted)
    if info.type == "binary":
        return 1
    return int(np.argmax(probs))


def class_probs(info: TaskInfo, head: Any, raw: torch.Tensor) -> torch.Tensor:
    """(B, K) probability of every class (binary: both classes), differentiable."""
    p = head.to_probs(raw)
    if info.type == "binary":
        p = p.reshape(len(p), -1)[:, :1]
        return torch.cat([1 - p, p], dim=1)
    return p


def probability(
    model: MultimodalModel, target: Target, inputs: Mapping[str, Any], mask: torch.Tensor
) -> torch.Tensor:
    """(B,) the probability of the explained class for a batch."""
    # Only the explained task's head: another task's (a report decoded word by word) would run
    # the encoders again, and the gradients would follow that second pass.
    raw = model.predict(inputs, mask, tasks=[target.info.name])[target.info.name]
    return class_probs(target.info, model.task_head(target.info.name), raw)[:, target.index]


def repeat(x: Any, r: int) -> Any:
    """A batch (a tensor or a dict of tensors) repeated ``r`` times along the batch axis."""
    if isinstance(x, Mapping):
        return {k: repeat(v, r) for k, v in x.items()}
    return x if r == 1 else x.repeat(r, *([1] * (x.dim() - 1)))


def modality_function(
    model: MultimodalModel,
    target: Target,
    inputs: Mapping[str, Any],
    mask: torch.Tensor,
    modality: str,
    key: str | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f(x) -> (n,)``: the class probability with modality ``modality``'s input (its array
    ``key`` for a tabular modality) replaced by ``x``, the rest of the batch held fixed.

    Captum stacks ``x`` as ``steps * B`` rows (step-major), so the rest is repeated to match.
    """

    def f(x: torch.Tensor) -> torch.Tensor:
        r = x.shape[0] // mask.shape[0]
        new = {m: repeat(v, r) for m, v in inputs.items() if m != modality}
        if key is None:
            new[modality] = x
        else:
            new[modality] = {
                k: x if k == key else repeat(v, r) for k, v in inputs[modality].items()
            }
        return probability(model, target, new, repeat(mask, r))

    return f
