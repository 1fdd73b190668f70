"""`fusiondx distill`: train a light student on a trained run's soft labels, and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fusiondx.cli._app import app, console, guard


@app.command()
def distill(
    run_dir: Annotated[
        Path, typer.Argument(help="The teacher: a run folder `fusiondx fit` wrote.")
    ],
    student: Annotated[
        Path,
        typer.Option(
            "--student",
            help="The student's config (YAML): the teacher's manifest, split and "
            "classification tasks; fewer modalities or lighter encoders.",
        ),
    ],
    alpha: Annotated[
        float,
        typer.Option("--alpha", help="Weight of the teacher's soft labels in the loss (0 to 1)."),
    ] = 0.5,
    temperature: Annotated[
        float,
        typer.Option("--temperature", help="Softening of the teacher's and student's logits."),
    ] = 2.0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default <student output_dir>/<student name>-distill): the "
            "runs distilled/ and alone/, and distill.md, distill.json, distill.png.",
        ),
    ] = None,
    alone: Annotated[
        Path | None,
        typer.Option(
            "--alone",
            help="A finished run of the same student trained alone, reused instead of "
            "training it again.",
        ),
    ] = None,
    n_boot: Annotated[
        int, typer.Option("--n-boot", help="Bootstrap replicates of the CIs.")
    ] = 1000,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the runs of an earlier distillation in --out."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress.")] = False,
) -> None:
    """Distil a trained fused model (the teacher) into a light student, and compare the two.

    The student learns from alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * its task
    loss; the same student is also trained on the labels alone. The table compares teacher,
    distilled student and student alone on the shared test split (bootstrap CIs, paired
    differences, how close each student's probabilities are to the teacher's).

    Example: `fusiondx distill runs/demo --student student.yaml --alpha 0.5 --temperature 2`
    """
    from fusiondx.study.distill import distill as run_distill

    def run() -> None:
        r = run_distill(
            run_dir,
            student,
            alpha=alpha,
            temperature=temperature,
            out=out,
            alone=alone,
            n_boot=n_boot,
            progress=not quiet,
            overwrite=overwrite,
        )
        for task, t in r.results["tasks"].items():
            m = t["metric"]
            row = ", ".join(
                f"{name} {t['models'][k][m]['mean']:.3f}"
                for k, name in (
                    ("teacher", "teacher"),
                    ("distilled", "distilled"),
                    ("alone", "alone"),
                )
            )
            d = t["distilled_vs_alone"]
            console.print(
                f"{task}: test {m} {row}; distilled - alone {d['difference']:+.3f} "
                f"[{d['low']:+.3f}, {d['high']:+.3f}]",
                highlight=False,
            )
        console.print(
            f"Wrote [bold]{r.out_dir}[/]: runs distilled/ and alone/, "
            + ", ".join(p.name for p in r.files)
        )

    guard(run)
