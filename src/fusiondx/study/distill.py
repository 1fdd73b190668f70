"""``fusiondx distill``: a light student trained on a fused teacher's soft labels, and judged.

The student config (fewer modalities, lighter encoders) must read the teacher's manifest, split
its cases exactly as the teacher did, and predict a subset of the teacher's classification tasks
with the same classes; anything else is refused before any training, naming the setting to fix.

The teacher scores every case of the manifest once, decoded with its own preprocessing (a
teacher sees the inputs it was trained on, whatever the student drops). Two students are then
trained through the normal engine with the same config and seed: ``distilled`` with the
teacher's soft labels mixed into its loss (:mod:`fusiondx.engine.distill_task`), and ``alone``
without them (or an existing run given as ``alone``), so the table isolates what the teacher
taught. The comparison (:mod:`fusiondx.study.distill_report`) scores the three on the shared
test split with paired bootstrap CIs and writes ``distill.md``, ``distill.json`` and
``distill.png`` in the output folder::

    <out>/distilled/     the student trained with the teacher (a run folder)
    <out>/alone/         the same student trained on the labels alone
    <out>/distill.md     the table; distill.json the same numbers; distill.png the chart
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.config import Config, load_config
from fusiondx.engine.distill_task import teacher_logits
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import ConfigError, RunError, did_you_mean
from fusiondx.tasks import TaskInfo

ALPHA = 0.5
TEMPERATURE = 2.0


@dataclass
class DistillResult:
    """Where a distillation wrote its runs and table, and the table's numbers."""

    out_dir: Path
    teacher: Path
    distilled: Path
    alone: Path
    results: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _student_config(student: Config | str | Path | dict[str, Any]) -> Config:
    return student if isinstance(student, Config) else load_config(student)


def _teacher_tasks(teacher: RunDir) -> dict[str, TaskInfo]:
    return {t["name"]: TaskInfo.from_dict(t) for t in teacher.preprocessing()["tasks"]}


def check_student(teacher: RunDir, student: Config, where: str = "student config") -> list[str]:
    """Refuse a student that does not share the teacher's manifest, split or tasks; return the
    student's task names.

    Reads the manifest and splits the cases as the student's training will (no file is decoded).
    """
    from fusiondx.data.labelling import label_cases

    t_cfg = teacher.config()
    t_manifest, s_manifest = Path(t_cfg.data.manifest), Path(student.data.manifest)
    if t_manifest.resolve() != s_manifest.resolve():
        raise ConfigError(
            f"The {where} reads the manifest '{s_manifest}', the teacher '{t_manifest}'; a "
            "student learns from the teacher's answers on the same cases.",
            column="data.manifest",
            fix=f"set data.manifest in the {where} to '{t_manifest}'",
        )
    known = _teacher_tasks(teacher)
    for task in student.tasks:
        if task.name not in known:
            raise ConfigError(
                f"The {where}'s task '{task.name}' is not one of the teacher's tasks "
                f"{sorted(known)}.{did_you_mean(task.name, known)}",
                column="tasks",
                fix="give the student tasks the teacher was trained on (same names)",
            )
    labelled = label_cases(student)
    for info in labelled.tasks:
        t_info = known[info.name]
        if not info.is_classification:
            raise ConfigError(
                f"Task '{info.name}' is a {info.type} task; distillation covers classification "
                "tasks (binary, multiclass, multilabel) only.",
                column="tasks",
                fix="distil a classification task, or train this student with `fusiondx fit`",
            )
        if (info.type, info.classes, info.label) != (t_info.type, t_info.classes, t_info.label):
            raise ConfigError(
                f"Task '{info.name}' differs between the student ({info.type}, label "
                f"{list(info.label)}, classes {list(info.classes)}) and the teacher "
                f"({t_info.type}, label {list(t_info.label)}, classes {list(t_info.classes)}).",
                column="tasks",
                fix="configure the student's task exactly as the teacher's config.yaml does",
            )
    ids = labelled.ids.to_numpy().astype(str)
    theirs = teacher.splits(ids)
    differ = np.flatnonzero(theirs != labelled.split)
    if differ.size:
        i = int(differ[0])
        raise ConfigError(
            f"The {where} splits the cases differently from the teacher: {differ.size} case(s) "
            f"differ, e.g. case '{ids[i]}' is '{labelled.split[i]}' for the student and "
            f"'{theirs[i]}' for the teacher; the comparison needs the same test cases, and a "
            "student must not learn from the teacher's answers on them.",
            column="data.split",
            fix="use the teacher's seed, data.split and data.patient_column (see "
            f"{teacher.config_file})",
        )
    return [t.name for t in student.tasks]


def _run_config(student: Config, name: str, out_dir: Path) -> Config:
    d = student.model_dump(mode="json", exclude_unset=True)
    d["name"], d["output_dir"] = name, str(out_dir)
    d.pop("study", None)
    return Config.model_validate(d)


def distill(
    teacher_run: Path,
    student: Config | str | Path | dict[str, Any],
    *,
    alpha: float = ALPHA,
    temperature: float = TEMPERATURE,
    out: Path | None = None,
    alone: Path | None = None,
    n_boot: int = 1000,
    progress: bool = True,
    overwrite: bool = False,
) -> DistillResult:
    """Train ``student`` on ``teacher_run``'s soft labels and compare it with the teacher and
    the same student trained alone (see the module docstring).

    ``out`` defaults to ``<student output_dir>/<student name>-distill``; ``alone`` reuses a
    finished run of the student config instead of training it. ``overwrite`` replaces the
    runs of an earlier distillation in ``out``.
    """
    from fusiondx.engine.run import fit
    from fusiondx.study.distill_report import compare, write_outputs

    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha {alpha:g} is not in [0, 1].", fix="use e.g. --alpha 0.5")
    if not temperature > 0:
        raise ConfigError(
            f"temperature {temperature:g} is not above 0.", fix="use e.g. --temperature 2"
        )
    teacher = RunDir(Path(teacher_run))
    if not teacher.finished:
        raise RunError(
            f"'{teacher.path}' is not a finished run (it has no metrics.json).",
            file=teacher.path,
            fix="give the folder of a run `fusiondx fit` finished",
        )
    s_cfg = _student_config(student)
    tasks = check_student(teacher, s_cfg)
    if alone is not None:
        alone_run = RunDir(Path(alone))
        if not alone_run.finished:
            raise RunError(
                f"The student-alone run '{alone_run.path}' is not finished.",
                file=alone_run.path,
                fix="give a finished run of the student config, or leave out --alone",
            )
        check_student(teacher, alone_run.config(), where="student-alone run's config")
    out_dir = Path(out) if out is not None else s_cfg.output_dir / f"{s_cfg.name}-distill"

    _say(progress, f"Teacher {teacher.path.name}: scoring every case for soft labels")
    soft = teacher_logits(teacher, tasks, alpha, temperature, progress)
    _say(progress, f"Training the distilled student (alpha {alpha:g}, temperature {temperature:g})")
    distilled = fit(
        _run_config(s_cfg, "distilled", out_dir),
        overwrite=overwrite,
        progress=progress,
        soft_targets=soft,
    ).run_dir
    if alone is None:
        _say(progress, "Training the same student on the labels alone")
        alone_dir = fit(
            _run_config(s_cfg, "alone", out_dir), overwrite=overwrite, progress=progress
        ).run_dir
    else:
        alone_dir = Path(alone)
    results = compare(
        {"teacher": teacher.path, "distilled": Path(distilled), "alone": alone_dir},
        tasks,
        n_boot=n_boot,
        settings={"alpha": alpha, "temperature": temperature},
    )
    files = write_outputs(results, out_dir)
    return DistillResult(out_dir, teacher.path, Path(distilled), alone_dir, results, files)
