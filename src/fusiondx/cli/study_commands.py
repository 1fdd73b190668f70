"""The commands that compare models: `study` (baselines vs fusion strategies vs ablations),
`search` (Optuna tuning) and `demo` (the study on the built-in cohort)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fusiondx.cli._app import app, console, guard


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
    label_fraction: Annotated[
        str | None,
        typer.Option(
            "--label-fraction",
            help="Label-efficiency protocol: e.g. 0.1,0.3,1.0; pretrained vs scratch at each "
            "share of the training labels (same test set).",
        ),
    ] = None,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            "--pretrained",
            help="With --label-fraction: start from this encoders.pt instead of pretraining here.",
        ),
    ] = None,
    train_missing: Annotated[
        str | None,
        typer.Option(
            "--train-missing",
            help="Missing-modality protocol: e.g. 0,0.3,0.6; every strategy trained with that "
            "share of each modality removed, tested at 0-100% missing.",
        ),
    ] = None,
    site_column: Annotated[
        str | None,
        typer.Option(
            "--site-column",
            help="Shift across sites: leave-one-site-out over this manifest column beside the "
            "pooled split, for the config's fusion (or --strategies), with per-site drops and drift.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Does fusion help, and which fusion? Baselines vs strategies vs ablations, with CIs and a report.

    Trains every single-modality baseline and every strategy on the same split over several
    seeds (or folds), picks the winner on validation data, ablates it, tests robustness to
    missing modalities, and writes report.html, table.md/csv and results.json. Rerunning the
    same command skips finished trainings.

    With --label-fraction, --train-missing or --site-column it runs that protocol instead, in its
    own folder (default <output_dir>/<name>_labels, <name>_missing or <name>_sites) with its own
    report.

    Example: `fusiondx study examples/study.yaml --strategies concat,attention,late_average --seeds 3 --jobs 2`,
    `fusiondx study examples/pretrain.yaml --label-fraction 0.1,0.3,1.0` or
    `fusiondx study examples/study.yaml --strategies concat,mvae --train-missing 0,0.3,0.6` or
    `fusiondx study examples/study.yaml --site-column site --seeds 1`
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
        if label_fraction is not None or train_missing is not None or site_column is not None:
            _protocol(config)
            return
        if pretrained is not None:
            raise ConfigError(
                "--pretrained goes with --label-fraction.",
                fix="add --label-fraction, or set modalities[i].encoder.init in the config",
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

    def _protocol(path: Path) -> None:
        from fusiondx.study import protocols

        chosen = [
            f
            for f, v in (
                ("--label-fraction", label_fraction),
                ("--train-missing", train_missing),
                ("--site-column", site_column),
            )
            if v is not None
        ]
        if len(chosen) > 1:
            raise ConfigError(
                f"{' and '.join(chosen)} are separate protocols; run one at a time.",
                fix="drop all but one of them (each writes its own folder)",
            )
        if folds is not None:
            raise ConfigError(
                "The protocols repeat over seeds, not folds.", fix="use --seeds instead of --folds"
            )
        cfg = load_config(path)
        common: dict[str, Any] = {
            "seeds": seeds,
            "jobs": jobs,
            "console": Console(stderr=False, quiet=quiet),
            "progress": not quiet,
        }
        if site_column is not None:
            from fusiondx.study.sites import run_leave_one_site_out

            run_leave_one_site_out(
                cfg,
                out or cfg.output_dir / f"{cfg.name}_sites",
                site_column,
                strategies=strategies,
                **common,
            )
        elif label_fraction is not None:
            if strategies is not None:
                raise ConfigError(
                    "--label-fraction measures the config's own fusion.",
                    fix="set fusion.name in the config instead of --strategies",
                )
            fractions = protocols.parse_shares(label_fraction, "--label-fraction", low_open=True)
            protocols.run_label_efficiency(
                cfg,
                out or cfg.output_dir / f"{cfg.name}_labels",
                fractions,
                pretrained=pretrained,
                **common,
            )
        else:
            assert train_missing is not None
            shares = protocols.parse_shares(train_missing, "--train-missing", low_open=False)
            protocols.run_missing_training(
                cfg,
                out or cfg.output_dir / f"{cfg.name}_missing",
                shares,
                strategies=strategies,
                **common,
            )

    guard(run)


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
            help="Where the trials are kept: an Optuna database URL (postgresql://... shared by "
            "machines) or a journal file (journal:///path/search.journal); default sqlite in the "
            "search folder, a journal file there with --workers above 1.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes on this machine running the trials at once (they share --trials).",
        ),
    ] = 1,
    first_worker: Annotated[
        int,
        typer.Option(
            "--first-worker",
            min=0,
            help="Number of this machine's first worker (another machine on the same storage: "
            "the sum of the workers started before, so that samplers differ).",
        ),
    ] = 0,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="Refit the best trial when the trials are done (--no-refit on extra machines).",
        ),
    ] = True,
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
    With `--workers N`, N processes share the trials; more machines join with the same command
    and `--storage postgresql://...` (docs/scaling.md).

    Example: `fusiondx search examples/study.yaml --trials 50 --storage sqlite:///search.db`
    or `fusiondx search examples/study.yaml --trials 50 --workers 4`
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
            workers=workers,
            first_worker=first_worker,
            strategies=strategies,
            seeds=seeds,
            jobs=jobs,
            refit=refit,
            console=Console(quiet=quiet),
            progress=not quiet,
        )

    guard(run)


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

    guard(run)
