"""What a study shows on the console: a progress bar over its trainings (one line per finished
training when the console is a log file) and the closing verdict with the files written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fusiondx.engine.fairness import fairness_text
from fusiondx.study.runner import Job, read_metrics, run_jobs
from fusiondx.study.verdict import WARNINGS


def train_plan(
    plan: dict[str, list[Job]],
    n_jobs: int,
    title: str,
    console: Console,
    progress: bool,
    metric: str,
) -> dict[str, str]:
    """Run every job of ``plan`` under one progress bar titled ``title``; the failures, by run
    folder."""
    jobs = [j for js in plan.values() for j in js]
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    ]
    with Progress(*columns, console=console, disable=not progress) as bar:
        t = bar.add_task(title, total=len(jobs), last="")

        def done(job: Job, err: str | None) -> None:
            bar.update(t, advance=1, last=("FAILED " if err else "") + job.title)
            if progress and not console.is_terminal and not err:
                # A log file shows no live bar: one line per finished training instead.
                m = read_metrics(job) or {}
                val = (m.get("val") or {}).get(job.config["tasks"][0]["name"], {})
                n = int(bar.tasks[0].completed)
                console.print(
                    f"  [{n}/{len(jobs)}] {job.title}: val {_first_metric(val, metric)}, "
                    f"{m.get('train_seconds', 0):.0f} s"
                )
            if err:
                console.print(
                    f"[red]{job.title} failed[/]: {err.splitlines()[-1] if err else ''} "
                    f"(details in {job.run_dir / 'error.txt'})"
                )

        return run_jobs(jobs, n_jobs, done)


def say_done(
    console: Console, results: dict[str, Any], out_dir: Path, failed: dict[str, str]
) -> None:
    """The verdict, the failures left out and where the study's files are."""
    v = results["verdict"]
    color = {"good": "green", "meh": "yellow", "bad": "red"}[v["tone"]]
    console.print(f"\n[bold {color}]{escape(v['headline'])}[/]", highlight=False)
    for line in v["lines"]:
        style = "bold red" if line.startswith(WARNINGS) else ""
        console.print(
            f"[{style}]  - {escape(line)}[/]" if style else f"  - {escape(line)}", highlight=False
        )
    fr = (results.get("fairness") or {}).get("entries") or {}
    winner = fr.get(results.get("winner"))
    if winner:
        console.print(f"\nWinner ({results.get('winner')}):")
        for line in fairness_text(winner, results["study"].get("primary_metric")):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if failed:
        console.print(
            f"[yellow]{len(failed)} training(s) or reference(s) failed and are left out; see "
            "error.txt in their folders.[/]"
        )
    console.print(
        f"Wrote {out_dir / 'report.html'}\n      {out_dir / 'table.md'}, {out_dir / 'table.csv'}\n"
        f"      {out_dir / 'results.json'}\n      run folders under {out_dir / 'runs'}"
    )


def _first_metric(val: dict[str, Any], metric: str) -> str:
    """The study's metric, or failing that the first of the usual ones the run reports."""
    for k in (
        metric,
        "auroc",
        "auprc",
        "f1",
        "accuracy",
        "iou",
        "dice_lesion",
        "bleu4",
        "c_index",
        "r2",
    ):
        if isinstance(val.get(k), (int, float)):
            return f"{k} {val[k]:.3f}"
    return "n/a"
