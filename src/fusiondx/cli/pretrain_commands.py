"""Representation learning: `pretrain` encoders without labels, `retrieve` across modalities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fusiondx.cli._app import app, console, guard


def _retrieval_table(retrieval: dict[str, Any]) -> Table:
    table = Table(title="Retrieval on the test cases (95% bootstrap CI)")
    for col in ("direction", "cases", "R@1", "R@10", "median rank", "chance R@10, rank"):
        table.add_column(col, justify="left" if col == "direction" else "right")
    for direction, r in retrieval.items():
        r10, rank = r["recall@10"], r["median_rank"]
        table.add_row(
            escape(direction),
            str(r["n"]),
            f"{r['recall@1']['value']:.2f}",
            f"{r10['value']:.2f} [{r10['low']:.2f}, {r10['high']:.2f}]",
            f"{rank['value']:.0f} [{rank['low']:.0f}, {rank['high']:.0f}]",
            f"{r10['chance']:.2f}, {rank['chance']:.0f}",
        )
    return table


@app.command()
def pretrain(
    config: Annotated[Path, typer.Argument(help="YAML config (its `pretrain` section).")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier run of this name.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Pretrain the configured encoders on every case, labelled or not; writes runs/NAME/encoders.pt.

    The objectives (`pretrain.objectives`: contrastive, masked_modality, reconstruction) learn
    from the pairing of modalities alone. Fine-tune from the result with
    `modalities[i].encoder.init: runs/NAME/encoders.pt` (and `freeze: true` to keep it fixed).

    Example: `fusiondx pretrain examples/pretrain.yaml` then
    `fusiondx retrieve runs/pretrain_demo --from report --to ecg --query case_00017`
    """
    from fusiondx.config import load_config
    from fusiondx.engine.pretrain import pretrain as pretrain_run

    def run() -> None:
        cfg = load_config(config)
        result = pretrain_run(cfg, overwrite=overwrite, progress=not quiet)
        m = result.metrics
        console.print(
            f"Kept epoch {m['best_epoch']} of {m['epochs_run']} (validation loss "
            f"{m['val_loss']:.4f}); trained on {m['cases']['train']} cases."
        )
        if m["retrieval"]:
            console.print(_retrieval_table(m["retrieval"]))
        console.print(
            f"Wrote [bold]{result.encoders_file}[/] (and config.yaml, splits.csv, metrics.json"
            f"{', retrieval.json (Recall@1/5/10)' if m['retrieval'] else ''}, logs/metrics.csv in "
            f"{result.run_dir})"
        )

    guard(run)


@app.command()
def retrieve(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `fusiondx pretrain`.")],
    source: Annotated[str, typer.Option("--from", help="The query's modality.")],
    target: Annotated[str, typer.Option("--to", help="The modality to search.")],
    query: Annotated[
        str,
        typer.Option(
            "--query", help="A case id, a file (image or signal record), or text (text modality)."
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Search this manifest's cases (default: the run's test cases)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="How many cases to return.")] = 5,
) -> None:
    """The cases of one modality nearest a query of another, in the pretrained shared space.

    Example: `fusiondx retrieve runs/pretrain_demo --from report --to ecg --query case_00017`,
    or `--from report --to cxr --query "opacity in the left lower lobe"`.
    """
    from fusiondx.engine.retrieve import retrieve as retrieve_cases

    def run() -> None:
        found = retrieve_cases(run_dir, source, target, query, data=data, k=k)
        table = Table(title=f"Nearest {target} to the {source} of {query!r}")
        for col in ("rank", "case_id", "similarity", "partner"):
            table.add_column(col, justify="right" if col != "case_id" else "left")
        for row in found.itertuples(index=False):
            table.add_row(
                str(row.rank),
                escape(str(row.case_id)),
                f"{row.similarity:.3f}",
                "yes" if row.partner else "",
            )
        console.print(table)

    guard(run)
