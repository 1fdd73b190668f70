"""Distillation measured: the default model as teacher, the efficient preset as student (issue 18).

The teacher is the demo's default four-modality model; the student is the same config with
``preset: efficient`` (what ``bench efficient`` measures). ``fusiondx.distill`` trains the
student twice with the same seed and split: with the teacher's soft labels in its loss
(``--alpha``, ``--temperature``) and on the labels alone. The table is the study-style one
``fusiondx distill`` writes (``distill.md``): test AUROC and the other metrics with 95%
bootstrap CIs, parameters, FLOPs per case, the teacher gap, and the paired differences distilled
minus alone and distilled minus teacher.

Example: python -m bench distill --cases 1500 --epochs 20   (three trainings; ~10 min on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench._common import WORK, cohort, default_config, save
from bench.efficient import efficient_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1500, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping on)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft labels")
    p.add_argument("--temperature", type=float, default=2.0, help="softening of the logits")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the CIs")


def run(args: argparse.Namespace) -> None:
    import fusiondx
    from fusiondx.study.distill_report import markdown

    out = WORK / "distill"
    manifest = cohort(args.cases)
    teacher_cfg = default_config(manifest, out, epochs=args.epochs, progress=False)
    teacher_cfg = teacher_cfg.model_copy(update={"name": "teacher"})
    student = efficient_config(teacher_cfg).model_copy(update={"name": "student"})
    print("Training the teacher (the default model) ...", flush=True)
    teacher = Path(fusiondx.fit(teacher_cfg, overwrite=True, progress=False).run_dir)
    print("Distilling into the efficient student, and training it alone ...", flush=True)
    result = fusiondx.distill(
        teacher,
        student,
        alpha=args.alpha,
        temperature=args.temperature,
        out=out / "student-distill",
        n_boot=args.n_boot,
        overwrite=True,
    )
    r = result.results
    # distill.md's body (table and paired differences) without its title: BENCHMARKS.md gives
    # the section its own.
    body = markdown(r).split("\n", 1)[1].strip().replace("\n## ", "\n#### ")
    md = (
        f"Teacher: the default model; student: `preset: efficient` (all four modalities). "
        f"{args.cases} cases, at most {args.epochs} epochs with early stopping, one seed.\n\n"
        + body
    )
    print(md)
    save(
        "distill",
        {"cases": args.cases, "epochs": args.epochs, **r},
        md,
        "Distillation: teacher, distilled student, student alone",
    )
    print(f"The runs and distill.md/json/png are in {result.out_dir}")
