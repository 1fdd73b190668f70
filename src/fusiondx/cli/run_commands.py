"""The commands of one run's life: `validate` a config, `fit` it, then `evaluate`, `predict`
with and `export` the trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fusiondx.cli._app import app, console, guard
from fusiondx.cli._output import print_data_summary, print_metrics, print_problems, warn
from fusiondx.errors import FusionDxError


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
            print_problems(problems, cfg.data.manifest)
            raise typer.Exit(2) from None
        print_data_summary(prepared)
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

    guard(run)


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

    With `train.devices: N` (and `strategy: ddp`), fit starts N processes that train together;
    on a cluster start it with torchrun or srun instead (docs/scaling.md).

    Example: `fusiondx fit examples/demo.yaml` then `fusiondx fit examples/demo.yaml --resume`
    after an interruption, or `--overwrite` to train that run again from scratch.
    """
    from fusiondx.config import load_config
    from fusiondx.engine.run import fit as fit_run

    def run() -> None:
        cfg = load_config(config)
        result = fit_run(
            cfg, resume=resume, overwrite=overwrite, progress=not quiet, notify=warn, launch=True
        )
        if "rank" in result.metrics:  # another process of a multi-process training: rank 0 reports
            return
        print_metrics({f"{cfg.name} (test)": result.metrics["test"]})
        console.print(
            f"Wrote run to [bold]{result.run_dir}[/] (metrics.json, predictions.csv, model.pt)"
        )

    guard(run)


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
    """Metrics of a trained run on its test split, or on another labelled manifest; with
    `fairness.columns` in the config, also per subgroup (sex, age band, site, ...).

    Example: `fusiondx evaluate runs/demo --data other_site/manifest.csv`
    """
    from fusiondx.engine.fairness import fairness_text
    from fusiondx.engine.run import evaluate as eval_run

    def run() -> None:
        result = eval_run(run_dir, data, root)
        print_metrics({f"{run_dir.name} on {result.metrics['split']}": result.metrics["metrics"]})
        for report in (result.metrics.get("fairness") or {}).values():
            for line in fairness_text(report):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(f"Wrote [bold]{result.metrics['written']}[/]")

    guard(run)


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
    explain: Annotated[
        Path | None,
        typer.Option(
            "--explain",
            help="Also write one explanation page per case into this folder (<folder>/<case>/"
            "explanation.html; see `fusiondx explain`).",
        ),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="csv (the predictions table) or fhir (one FHIR RiskAssessment per case and "
            "task: a Bundle, or NDJSON when --out ends in .ndjson; needs fusiondx[interop]).",
        ),
    ] = "csv",
) -> None:
    """Predict new cases with a trained run; writes probabilities and predicted classes.

    Classifiers trained with the post-hoc layer write calibrated probabilities, the class at the
    validation-chosen threshold, the conformal prediction set and a refer flag per case.
    With --format fhir the predictions go back to a FHIR system as RiskAssessment resources
    (docs/interoperability.md).

    Example: `fusiondx predict runs/demo --data new_cases.csv --out preds.csv --explain why/`

    Example: `fusiondx predict runs/fhir_label --data prepared/fhir/manifest.csv --format fhir --out risk.json`
    """
    from fusiondx.engine.run import predict as predict_run

    def run() -> None:
        frame = predict_run(run_dir, data, out, root, overwrite=overwrite, format=format)
        what = "FHIR RiskAssessment" if format == "fhir" else "predictions"
        console.print(f"Wrote {len(frame)} cases' {what} to [bold]{out}[/]")
        for col in (c for c in frame.columns if c.endswith("_refer")):
            task = col.removesuffix("_refer")
            console.print(
                f"{task}: {int(frame[col].sum())} of {len(frame)} cases referred (their conformal "
                f"set, column {task}_set, is not the predicted class alone)",
                highlight=False,
            )
        if explain is not None:
            from fusiondx.explanations import explain_manifest

            pages = explain_manifest(run_dir, data, explain, root=root)
            console.print(f"Wrote {len(pages)} explanation pages to [bold]{explain}[/]")

    guard(run)


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
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write an int8 model (static QDQ quantisation, calibrated on training "
            "cases) beside the float one, e.g. model.int8.onnx; kept only if the test metric holds.",
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            help="With --int8: the largest drop of the test metric (AUROC for classifiers) the "
            "int8 model may show; more and it is refused and deleted.",
        ),
    ] = 0.005,
    int8_recipe: Annotated[
        str | None,
        typer.Option(
            "--int8-recipe",
            help="With --int8: try only this recipe (inputs-float, inputs-and-heads-float, "
            "inputs-float-percentile, all-ops); default: the first two in order, the first "
            "within --tolerance kept.",
        ),
    ] = None,
) -> None:
    """Export a trained run to ONNX, checked against PyTorch on the run's test cases.

    Inputs are named <modality> or <modality>.<array>, plus mask (True where a modality is
    present); outputs are named after the tasks. MODEL_CARD.md (task, inputs, training data,
    test metrics with 95% CIs, intended use and limits) is written beside the ONNX file. Needs
    `pip install 'fusiondx[export]'`. With --int8 the run also gets int8.json: sizes, latency
    per case, the test metric of the float and the int8 model, and which recipe was kept.

    Example: `fusiondx export runs/demo --out demo.onnx`, or `fusiondx export runs/demo --int8`
    """
    from fusiondx.export import export_run

    def run() -> None:
        from fusiondx.serving.card import write_model_card

        e = export_run(run_dir, out, overwrite=overwrite)
        console.print(
            f"Wrote [bold]{e.path}[/]: inputs {', '.join(e.input_names)}; outputs "
            f"{', '.join(e.output_names)}. ONNX Runtime matches PyTorch on {e.cases_checked} "
            f"test cases (max difference {e.max_abs_diff:.1e})."
        )
        if e.pytorch_tasks:
            console.print(
                f"Not in the graph: task(s) {', '.join(e.pytorch_tasks)} generate text token by "
                "token; `fusiondx serve` answers them with the PyTorch model."
            )
        card = write_model_card(run_dir, e.path.parent / "MODEL_CARD.md")
        if card is not None:
            console.print(f"Wrote [bold]{card}[/]: the model card (what `fusiondx serve` shows).")
        if int8:
            from fusiondx.quantize import describe, quantize_run

            q = quantize_run(
                run_dir, e.path, tolerance=tolerance, overwrite=overwrite, recipe=int8_recipe
            )
            console.print(describe(q), highlight=False)

    guard(run)
