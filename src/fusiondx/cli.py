"""The `fusiondx` command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from fusiondx.errors import FusionDxError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="FusionDx: multimodal disease recognition from images, signals, text and tabular data.",
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

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


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    _state["debug"] = debug


def _guard(fn: Callable[[], Any]) -> Any:
    """Run a command; user errors become one paragraph on stderr and exit code 2."""
    try:
        return fn()
    except FusionDxError as err:
        if _state["debug"]:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print(
            "interrupted; `fusiondx fit --resume` continues a run from its last checkpoint, "
            "and rerunning `fusiondx study` skips the trainings it finished"
        )
        raise typer.Exit(130) from None


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="YAML config.")]) -> None:
    """Check a config and every file its manifest points to, without training.

    Example: `fusiondx validate examples/demo.yaml`
    """
    from fusiondx.config import load_config
    from fusiondx.data.validation import check_data
    from fusiondx.models.build import check_parts

    def run() -> None:
        from fusiondx.engine import runfolder

        cfg = load_config(config)
        check_parts(cfg)
        runfolder.check_writable(cfg.run_dir)  # `fit` would otherwise fail after preparing the data
        try:
            prepared = check_data(cfg, progress=True)
        except FusionDxError as err:
            problems = getattr(err, "all_errors", None)
            if problems is None:
                raise  # one problem that stops everything (no manifest, a config error): one paragraph
            _print_problems(problems, cfg.data.manifest)
            raise typer.Exit(2) from None
        _print_data_summary(prepared)
        for note in prepared.store.notes:
            console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)
        for p in prepared.preprocessors.values():
            for note in p.notes():
                console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        ours, others = runfolder.run_contents(cfg.run_dir)
        if ours or others:
            console.print(
                f"[yellow]note:[/] {escape(str(cfg.run_dir))} already holds "
                f"{'a run' if ours else 'other files'}; `fusiondx fit` refuses it unless given "
                "--overwrite (or --resume), or another name.",
                highlight=False,
                soft_wrap=True,
            )
        console.print(
            f"[green]OK[/]: {config} and all {len(prepared.store)} cases are valid; runs go to "
            f"{cfg.run_dir}."
        )

    _guard(run)


@app.command()
def fit(
    config: Annotated[Path, typer.Argument(help="YAML config.")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from runs/NAME/checkpoints/last.ckpt.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an earlier run of this name: deletes only the files FusionDx wrote in "
            "runs/NAME/ and keeps any other file there. Without it, fit refuses a folder that holds a run.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train one model; writes runs/NAME/ (config, checkpoints, metrics, predictions).

    Example: `fusiondx fit examples/demo.yaml` then `fusiondx fit examples/demo.yaml --resume`
    after an interruption, or `--overwrite` to train that run again from scratch.
    """
    from fusiondx.config import load_config
    from fusiondx.engine.run import fit as fit_run

    def run() -> None:
        cfg = load_config(config)
        result = fit_run(cfg, resume=resume, overwrite=overwrite, progress=not quiet, notify=_warn)
        _print_metrics({f"{cfg.name} (test)": result.metrics["test"]})
        console.print(
            f"Wrote run to [bold]{result.run_dir}[/] (metrics.json, predictions.csv, model.pt)"
        )

    _guard(run)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx fit`.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Another manifest (CSV/Parquet) with labels.")
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Data root of --data (default: its folder).")
    ] = None,
) -> None:
    """Metrics of a trained run on its test split, or on another labelled manifest.

    Example: `fusiondx evaluate runs/demo --data other_site/manifest.csv`
    """
    from fusiondx.engine.run import evaluate as eval_run

    def run() -> None:
        result = eval_run(run_dir, data, root)
        _print_metrics({f"{run_dir.name} on {result.metrics['split']}": result.metrics["metrics"]})
        console.print(f"Wrote [bold]{result.metrics['written']}[/]")

    _guard(run)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx fit`.")],
    data: Annotated[
        Path, typer.Option("--data", help="Manifest of new cases (labels not needed).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the predictions CSV.")] = Path(
        "predictions.csv"
    ),
    root: Annotated[
        Path | None, typer.Option("--root", help="Data root of --data (default: its folder).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace --out even if it is not an earlier predictions file (never the manifest).",
        ),
    ] = False,
) -> None:
    """Predict new cases with a trained run; writes probabilities and predicted classes.

    Example: `fusiondx predict runs/demo --data new_cases.csv --out preds.csv`
    """
    from fusiondx.engine.run import predict as predict_run

    def run() -> None:
        frame = predict_run(run_dir, data, out, root, overwrite=overwrite)
        console.print(f"Wrote {len(frame)} predictions to [bold]{out}[/]")

    _guard(run)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx fit`.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="ONNX file to write (default <run_dir>/model.onnx)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace --out even if it is not an earlier ONNX export."),
    ] = False,
) -> None:
    """Export a trained run to ONNX, checked against PyTorch on the run's test cases.

    Inputs are named <modality> or <modality>.<array>, plus mask (True where a modality is
    present); outputs are named after the tasks. Needs `pip install 'fusiondx[export]'`.

    Example: `fusiondx export runs/demo --out demo.onnx`
    """
    from fusiondx.export import export_run

    def run() -> None:
        e = export_run(run_dir, out, overwrite=overwrite)
        console.print(
            f"Wrote [bold]{e.path}[/]: inputs {', '.join(e.input_names)}; outputs "
            f"{', '.join(e.output_names)}. ONNX Runtime matches PyTorch on {e.cases_checked} "
            f"test cases (max difference {e.max_abs_diff:.1e})."
        )

    _guard(run)


@app.command("list")
def list_parts(
    what: Annotated[
        str, typer.Argument(help="encoders, fusions, heads, tasks, references, readers or adapters")
    ],
    pattern: Annotated[str, typer.Argument(help="Glob on the name, e.g. '*lstm*'.")] = "*",
) -> None:
    """List registered encoders, fusions, heads, task types, study references, file readers or
    dataset adapters with a one-line description; old names still accepted are shown as aliases.

    Example: `fusiondx list fusions` or `fusiondx list encoders '*transformer*'` or
    `fusiondx list references`, `fusiondx list readers` or `fusiondx list tasks`
    """
    from fusiondx.registry import (
        ADAPTERS,
        ENCODERS,
        FUSIONS,
        HEADS,
        READERS,
        REFERENCES,
        TASK_TYPES,
    )

    def run() -> None:
        regs = {
            "encoders": ENCODERS,
            "fusions": FUSIONS,
            "heads": HEADS,
            "references": REFERENCES,
            "tasks": TASK_TYPES,
            "readers": READERS,
            "adapters": ADAPTERS,
        }
        reg = regs.get(what)
        if reg is None:
            from fusiondx.errors import ConfigError, did_you_mean

            raise ConfigError(
                f"Cannot list '{what}'.{did_you_mean(what, list(regs))}",
                fix="use: fusiondx list encoders|fusions|heads|tasks|references|readers|adapters",
            )
        table = Table(title=f"{len(reg.names(pattern))} {what}")
        col = {
            "encoders": "kind",
            "fusions": "level",
            "heads": "tasks",
            "references": "inputs",
            "tasks": "heads",
            "readers": "suffixes",
            "adapters": "options",
        }[what]
        entries = reg.entries(pattern)
        # names in full on any terminal: the description column wraps instead
        table.add_column(
            "name", no_wrap=True, min_width=max((len(e.name) for e in entries), default=4)
        )
        for c in ("aliases", col, "tags", "description"):
            table.add_column(c, overflow="fold")
        for e in entries:
            extra = e.meta.get(col)
            if what == "heads":
                from fusiondx.tasks import served_by

                extra = served_by(e.name)
            elif what == "fusions":
                extra = e.cls.level
            elif what == "references":
                extra = f"{e.cls.kind}: {e.cls.inputs}"
            elif what == "adapters":
                extra = [o for o in e.options() if o != "progress"]
            elif what == "tasks":
                extra = list(e.cls.heads)
            elif what == "readers":
                extra = f"{e.meta['kind']}: {', '.join(e.meta.get('suffixes', ())) or e.meta.get('hint', '')}"
            extra = ", ".join(extra) if isinstance(extra, (tuple, list)) else str(extra or "")
            table.add_row(e.name, ", ".join(e.aliases), extra, ", ".join(sorted(e.tags)), e.summary)
        console.print(table)

    _guard(run)


@app.command()
def cohort(
    out: Annotated[Path, typer.Argument(help="Folder to write the cohort into.")],
    cases: Annotated[int, typer.Option("--cases", help="Number of cases.")] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    missing_rate: Annotated[
        float, typer.Option("--missing-rate", help="Chance each modality is missing.")
    ] = 0.1,
    image_format: Annotated[str, typer.Option("--image-format", help="png or dicom")] = "png",
    signal_format: Annotated[str, typer.Option("--signal-format", help="wfdb or npy")] = "wfdb",
    presence_shortcut: Annotated[
        float,
        typer.Option(
            "--presence-shortcut",
            help="Plant a shortcut of strength S in [0, 1): report and labs go missing "
            "more often for healthy cases, so WHICH data a case has predicts its label (0: off).",
        ),
    ] = 0.0,
    uninformative: Annotated[
        str,
        typer.Option(
            "--uninformative",
            help="Comma-separated modalities (image, ecg, report, labs) rendered from "
            "another, independent case: they carry no information about the label.",
        ),
    ] = "",
) -> None:
    """Write the built-in synthetic cohort (manifest.csv + image, signal and mask files).

    Example: `fusiondx cohort data/cohort --cases 2000 --image-format dicom`

    Variants for testing a study (docs/cohort.md): `fusiondx cohort data/shortcut --cases 1500
    --presence-shortcut 0.6` (missingness predicts the label) or `fusiondx cohort data/null
    --cases 1500 --uninformative ecg,report,labs` (fusion cannot beat the image).
    """
    from fusiondx.datasets.synthetic import make_cohort

    def run() -> None:
        manifest = make_cohort(
            out,
            n_cases=cases,
            seed=seed,
            missing_rate=missing_rate,
            image_format=image_format,
            signal_format=signal_format,
            presence_shortcut=presence_shortcut,
            uninformative=uninformative,
            progress=True,
        )
        console.print(f"Wrote {cases} cases to [bold]{manifest}[/]")

    _guard(run)


class _PrepareCommand(TyperCommand):
    """`prepare`'s help ends with every adapter and its options, generated when help is shown."""

    @property
    def epilog(self) -> str:
        from fusiondx.datasets.prepare import adapters_help

        return adapters_help()

    @epilog.setter
    def epilog(self, value: str | None) -> None:  # click sets it on construction; it is generated
        pass


@app.command(
    "prepare",
    cls=_PrepareCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def prepare_cmd(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Argument(help="The dataset's adapter (listed below), e.g. ptbxl.")
    ],
    path: Annotated[
        Path, typer.Argument(help="The dataset as downloaded: its folder (MedMNIST: the .npz).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder, or the manifest's path (.csv).")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Turn a public dataset in its official layout into a manifest + ready-to-run config.

    Writes manifest.csv, DATASET.yaml and skipped.csv (every record left out, with the reason)
    into --out; the dataset itself is only read. Splits follow the dataset's convention (PTB-XL
    strat_fold, MedMNIST's own splits) or are grouped by patient (ChestX-ray14, MIMIC-IV). Each
    adapter takes its own options after the folder (listed below). See docs/real-data.md.

    Example: `fusiondx prepare ptbxl ../shared/data/ptbxl500 --out ../prepared/ptbxl --labels superclass`
    """
    from fusiondx.datasets.prepare import parse_options, prepare_dataset

    def run() -> None:
        options = parse_options(dataset, ctx.args)
        _print_prepared(prepare_dataset(dataset, path, out, progress=not quiet, **options))

    _guard(run)


@app.command()
def study(
    config: Annotated[
        Path, typer.Argument(help="YAML config (its `study:` section sets the defaults).")
    ],
    strategies: Annotated[
        str | None,
        typer.Option("--strategies", help="'all' or a comma-separated list of fusion strategies."),
    ] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="Training seeds per entry.")] = None,
    folds: Annotated[
        int | None, typer.Option("--folds", help="Cross-validation folds instead of seeds.")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Trainings run in parallel processes.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Study folder; default <output_dir>/<name>_study.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Does fusion help, and which fusion? Baselines vs strategies vs ablations, with CIs and a report.

    Trains every single-modality baseline and every strategy on the same split over several
    seeds (or folds), picks the winner on validation data, ablates it, tests robustness to
    missing modalities, and writes report.html, table.md/csv and results.json. Rerunning the
    same command skips finished trainings.

    Example: `fusiondx study examples/study.yaml --strategies concat,attention,late_average --seeds 3 --jobs 2`
    """
    from fusiondx.config import load_config
    from fusiondx.errors import ConfigError
    from fusiondx.study.study import run_study

    def run() -> None:
        if seeds is not None and folds is not None:
            raise ConfigError(
                "--seeds and --folds cannot be combined.",
                fix="repeat over seeds (same split) or over folds (every case tested once), not both",
            )
        cfg = load_config(config)
        folder = out or cfg.output_dir / f"{cfg.name}_study"
        run_study(
            cfg,
            folder,
            strategies=strategies,
            seeds=seeds,
            folds=folds,
            jobs=jobs,
            console=Console(stderr=False, quiet=quiet),
            progress=not quiet,
        )

    _guard(run)


@app.command()
def search(
    config: Annotated[
        Path, typer.Argument(help="YAML config (its `study:` section sets the defaults).")
    ],
    trials: Annotated[
        int, typer.Option("--trials", help="Trials to run now (added to earlier ones).")
    ] = 20,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna database URL shared by machines; default sqlite in the search folder.",
        ),
    ] = None,
    strategies: Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help="'all' or a comma-separated list of fusion strategies to search over.",
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Seeds of the refit of the best trial.")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Parallel trainings in the refit.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Search folder; default <output_dir>/<name>_search."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Tune strategy, embedding size, dropout, lr and modality dropout with Optuna (pruned, on val).

    The best trial is then refit over the study's seeds and reported like a study entry
    (`<out>/best/report.html`). Runs again with the same storage add trials to the same search.

    Example: `fusiondx search examples/study.yaml --trials 50 --storage sqlite:///search.db`
    """
    from fusiondx.config import load_config
    from fusiondx.study.search import run_search

    def run() -> None:
        cfg = load_config(config)
        folder = out or cfg.output_dir / f"{cfg.name}_search"
        run_search(
            cfg,
            folder,
            trials=trials,
            storage=storage,
            strategies=strategies,
            seeds=seeds,
            jobs=jobs,
            console=Console(quiet=quiet),
            progress=not quiet,
        )

    _guard(run)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the cohort and the study.")] = Path(
        "demo_out"
    ),
    cases: Annotated[int, typer.Option("--cases", help="Cases in the built-in cohort.")] = 1500,
    epochs: Annotated[int, typer.Option("--epochs", help="Maximum epochs per training.")] = 20,
    seeds: Annotated[int, typer.Option("--seeds", help="Training seeds per model.")] = 3,
    jobs: Annotated[int, typer.Option("--jobs", help="Trainings run in parallel.")] = 2,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Small and fast (for CI, ~1 min): 400 cases, 3 epochs, 2 seeds, 2 strategies.",
        ),
    ] = False,
) -> None:
    """The study on the built-in cohort: single modalities vs fusion strategies vs ablations.

    Writes the cohort, `study.yaml`, and the study (report.html, table.md, results.json) under
    --out, and opens the report when a browser is available.

    Example: `fusiondx demo --out demo_out` (what `make demo` runs; about 13 min on 2 cores)
    """
    from fusiondx.demo import QUICK, STRATEGIES, run_demo

    def run() -> None:
        if quick:
            run_demo(
                out,
                cases=QUICK["cases"],
                epochs=QUICK["epochs"],
                seeds=QUICK["seeds"],
                strategies=QUICK["strategies"],
                n_boot=QUICK["n_boot"],
                jobs=jobs,
                console=console,
            )
        else:
            run_demo(
                out,
                cases=cases,
                epochs=epochs,
                seeds=seeds,
                strategies=STRATEGIES,
                jobs=jobs,
                console=console,
            )

    _guard(run)


def _warn(note: str) -> None:
    """A warning about the data: printed even with --quiet, and before training starts."""
    err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)


def _print_metrics(rows: dict[str, dict[str, dict[str, Any]]]) -> None:
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


PROBLEMS_SHOWN = 20  # per column and kind of problem; the rest are counted


def _print_problems(errors: list[FusionDxError], manifest: Path) -> None:
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


def _print_data_summary(prepared: Any) -> None:
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


def _print_prepared(result: Any) -> None:
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


def main() -> None:
    try:
        app()
    except SystemExit as e:
        sys.exit(e.code)


if __name__ == "__main__":
    main()
