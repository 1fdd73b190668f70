"""How the commands show results and problems on the terminal: metric tables, the data
summary and grouped manifest problems of `validate`, and what `prepare` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from fusiondx.cli._app import console, err_console
from fusiondx.errors import FusionDxError

METRICS = (
    "auroc",
    "auprc",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
    "specificity",
)
PROBLEMS_SHOWN = 20  # per column and kind of problem; the rest are counted


def warn(note: str) -> None:
    """A warning about the data: printed even with --quiet, and before training starts."""
    err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)


def print_metrics(rows: dict[str, dict[str, dict[str, Any]]]) -> None:
    for label, per_task in rows.items():
        for task, m in per_task.items():
            table = Table(title=f"{label}: task '{task}'")
            # Classification metrics in a fixed order; other heads' metrics as they report them.
            keys = [k for k in METRICS if k in m] or [
                k for k, v in m.items() if isinstance(v, (int, float))
            ]
            for k in keys:
                table.add_column(k)
            table.add_row(*[_fmt(m[k]) for k in keys])
            console.print(table)
            if "confusion_matrix" in m:
                console.print(f"confusion matrix (rows = true class): {m['confusion_matrix']}")
            _print_posthoc(m)


def _print_posthoc(m: dict[str, Any]) -> None:
    """The post-hoc layer's lines: which threshold the metrics use, calibration, conformal sets."""
    if isinstance(m.get("threshold"), dict):
        console.print(
            f"threshold metrics at {m['threshold'].get('described', '')}", highlight=False
        )
    c = m.get("calibration")
    if isinstance(c, dict):
        b, a = c.get("before") or {}, c.get("after") or {}
        console.print(
            f"calibration ({c.get('method')}): "
            + ", ".join(
                f"{name} {_fmt(b.get(k))} -> {_fmt(a.get(k))}"
                for k, name in (
                    ("ece", "ECE"),
                    ("ece_adaptive", "adaptive ECE"),
                    ("brier", "Brier"),
                )
            ),
            highlight=False,
        )
    s = m.get("conformal")
    if isinstance(s, dict):
        console.print(
            f"conformal sets (nominal {_fmt(s.get('nominal'))}): coverage {_fmt(s.get('coverage'))}, "
            f"mean set size {_fmt(s.get('mean_set_size'))}, referred {_fmt(s.get('referred'))}",
            highlight=False,
        )


def print_problems(errors: list[FusionDxError], manifest: Path) -> None:
    """Every problem, grouped by column and kind (same fix): a heading with the fix, at most
    PROBLEMS_SHOWN lines naming manifest line, case and file, then how many more."""
    groups: dict[tuple[str | None, str | None], list[FusionDxError]] = {}
    for e in errors:
        groups.setdefault((e.column, e.fix), []).append(e)

    def say(text: str) -> None:
        err_console.print(text, highlight=False, soft_wrap=True)

    for (column, fix), group in groups.items():
        where = (
            (f"columns '{column}'" if "," in column else f"column '{column}'")
            if column
            else "not in one column"
        )
        heading = f"[bold]{escape(where)}[/]: {len(group)} problem{'' if len(group) == 1 else 's'}"
        say(heading + (f". Fix: {escape(fix.rstrip('.'))}." if fix else ""))
        for e in group[:PROBLEMS_SHOWN]:
            text = e.describe(column=False, fix=False, file=e.file != str(manifest))
            say(f"  [red]-[/] {escape(text)}")
        if len(group) > PROBLEMS_SHOWN:
            say(f"  ... and {len(group) - PROBLEMS_SHOWN} more in {escape(where)}")
    columns = {c for e in errors if e.column for c in e.column.split(",")}
    say(
        f"[bold red]{len(errors)} problem(s) in {len(columns)} column(s)[/] of {escape(str(manifest))}"
    )


def print_data_summary(prepared: Any) -> None:
    import numpy as np

    store = prepared.store
    from fusiondx.tasks import task_type

    counted = [t for t in prepared.tasks if task_type(t).class_indices]
    single = len(counted) == 1
    table = Table(title="cases per split, share with each modality present, cases per class")
    table.add_column("split")
    table.add_column("cases")
    for m in store.modalities:
        table.add_column(m)
    for t in counted:
        for c in t.classes:
            table.add_column(c if single else f"{t.name}={c}")
    for s in ("train", "val", "test"):
        sel = store.split == s
        row = [s, str(int(sel.sum()))]
        row += [f"{store.mask[sel, j].mean():.0%}" for j in range(len(store.modalities))]
        for t in counted:
            y = store.targets[t.name][sel].astype(int)
            row += [str(int(np.sum(y == k))) for k in range(len(t.classes))]
        table.add_row(*row)
    console.print(table)
    empty = int((~store.mask.any(axis=1)).sum())
    if empty:
        console.print(
            f"[yellow]note:[/] {empty} case(s) have none of the configured modalities; "
            "they are kept, and the model can only predict the learned prior for them."
        )


def print_prepared(result: Any) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in result.label_counts.items())
    console.print(
        f"[bold]{result.dataset}[/]: {result.cases} cases loaded, {len(result.skipped)} skipped; {counts}"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if result.skipped:
        table = Table(title=f"skipped records (all {len(result.skipped)} in {result.skipped_file})")
        table.add_column("id")
        table.add_column("reason")
        for rid, reason in result.skipped[:20]:
            table.add_row(escape(rid), escape(reason))
        console.print(table)
    console.print(
        f"Wrote [bold]{result.manifest}[/] and [bold]{result.config}[/]. "
        f"Next: `fusiondx study {result.config}`"
    )


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and v != v) else f"{v:.3f}"
