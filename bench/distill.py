"""Distillation measured: the default model as teacher, the efficient preset as student (issue 18).

The teacher is the demo's default four-modality model; the student is the same config with
``preset: efficient`` (what ``bench efficient`` measures). ``fusiondx.distill`` trains the
student twice with the same seed and split: with the teacher's soft labels in its loss
(``--alpha``, ``--temperature``) and on the labels alone. The table is the study-style one
``fusiondx distill`` writes (``distill.md``): test AUROC and the other metrics with 95%
bootstrap CIs, parameters, FLOPs per case, the teacher gap, and the paired differences distilled
minus alone and distilled minus teacher.

Example: python -m bench distill --cases 1500 --epochs 20 --seeds 0,1,2   (three trainings a
seed; about 2 minutes a seed on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench._common import WORK, cohort, default_config, md_table, save
from bench.efficient import efficient_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1500, help="built-in cohort size")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping on)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft labels")
    p.add_argument("--temperature", type=float, default=2.0, help="softening of the logits")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the CIs")
    p.add_argument(
        "--seeds",
        type=lambda x: [int(v) for v in x.split(",")],
        default=[0],
        help="comma-separated seeds, each its own split; the full table is the first seed's",
    )


def _one_seed(args: argparse.Namespace, seed: int) -> Any:
    import fusiondx

    out = WORK / "distill" / ("" if seed == 0 else f"seed{seed}")
    manifest = cohort(args.cases)
    teacher_cfg = default_config(manifest, out, epochs=args.epochs, progress=False)
    teacher_cfg = teacher_cfg.model_copy(update={"name": "teacher", "seed": seed})
    student = efficient_config(teacher_cfg).model_copy(update={"name": "student"})
    print(f"Seed {seed}: training the teacher (the default model) ...", flush=True)
    teacher = Path(fusiondx.fit(teacher_cfg, overwrite=True, progress=False).run_dir)
    print("Distilling into the efficient student, and training it alone ...", flush=True)
    return fusiondx.distill(
        teacher,
        student,
        alpha=args.alpha,
        temperature=args.temperature,
        out=out / "student-distill",
        n_boot=args.n_boot,
        overwrite=True,
    )


def _diff(d: dict[str, Any]) -> str:
    return f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def run(args: argparse.Namespace) -> None:
    from fusiondx.study.distill_report import markdown

    results = [_one_seed(args, seed) for seed in args.seeds]
    r = results[0].results
    # distill.md's body (table and paired differences) without its title: BENCHMARKS.md gives
    # the section its own.
    body = markdown(r).split("\n", 1)[1].strip().replace("\n## ", "\n#### ")
    rows = []  # per seed: test AUROC of each model and the paired differences
    for seed, res in zip(args.seeds, results, strict=True):
        task = next(iter(res.results["tasks"].values()))
        rows.append(
            {
                "seed": seed,
                **{m: v["auroc"]["mean"] for m, v in task["models"].items()},
                "distilled_vs_teacher": task["distilled_vs_teacher"],
                "distilled_vs_alone": task["distilled_vs_alone"],
            }
        )
    seeds_md = ""
    if len(rows) > 1:
        models = ("teacher", "distilled", "alone")
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in models}
        table = md_table(
            [
                {
                    "seed": r["seed"],
                    **{k: f"{r[k]:.3f}" for k in models},
                    "d_teacher": _diff(r["distilled_vs_teacher"]),
                    "d_alone": _diff(r["distilled_vs_alone"]),
                }
                for r in rows
            ],
            [
                ("seed", "seed (its own split)"),
                ("teacher", "teacher AUROC"),
                ("distilled", "distilled student"),
                ("alone", "student alone"),
                ("d_teacher", "distilled - teacher [95% CI]"),
                ("d_alone", "distilled - alone [95% CI]"),
            ],
        )
        seeds_md = (
            f"\n\n#### Every seed (test AUROC)\n\n{table}\n\nMean over {len(rows)} seeds: "
            f"teacher {mean['teacher']:.3f}, distilled student {mean['distilled']:.3f} "
            f"({mean['distilled'] - mean['teacher']:+.3f}), student alone {mean['alone']:.3f} "
            f"({mean['alone'] - mean['teacher']:+.3f})."
        )
    md = (
        f"Teacher: the default model; student: `preset: efficient` (all four modalities). "
        f"{args.cases} cases, at most {args.epochs} epochs with early stopping; the table is "
        f"seed {args.seeds[0]}'s.\n\n" + body + seeds_md
    )
    print(md)
    save(
        "distill",
        {"cases": args.cases, "epochs": args.epochs, "seeds": rows, **r},
        md,
        "Distillation: teacher, distilled student, student alone",
    )
    print(f"The runs and distill.md/json/png are in {WORK / 'distill'}")
