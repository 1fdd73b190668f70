"""`fusiondx federate`: federated training across a manifest's sites with Flower."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fusiondx.cli._app import app, err_console, guard


@app.command()
def federate(
    config: Annotated[
        Path, typer.Argument(help="Run config (YAML); its manifest holds every site.")
    ],
    site_column: Annotated[
        str, typer.Option("--site-column", help="Manifest column naming each case's site.")
    ] = "site",
    rounds: Annotated[int, typer.Option("--rounds", help="Federated rounds.")] = 5,
    strategy: Annotated[
        str, typer.Option("--strategy", help="Flower strategy: fedavg or fedprox.")
    ] = "fedavg",
    local_epochs: Annotated[
        int, typer.Option("--local-epochs", help="Epochs each site trains per round.")
    ] = 1,
    proximal_mu: Annotated[
        float, typer.Option("--proximal-mu", help="FedProx's proximal weight mu.")
    ] = 0.01,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: <output_dir>/<name>_federated)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="simulation (one process) or processes (Flower's gRPC server here and a "
            "client process per site, on loopback).",
        ),
    ] = "simulation",
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Also train the centralised model and each site's own, for the table.",
        ),
    ] = True,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples of the CIs.")] = 1000,
) -> None:
    """Train the config's model across sites with Flower: each site keeps its own rows, only
    model weights travel; preprocessing statistics are agreed by federated statistics.

    Writes results.json, results.md (test metric per site and pooled, federated vs centralised
    vs each site alone, with rounds and bytes sent) and rounds.png into --out.

    Example: `fusiondx federate config.yaml --site-column site --rounds 10 --strategy fedprox --local-epochs 2`
    """

    def run() -> None:
        from fusiondx.config import load_config
        from fusiondx.federated import federate as run_federated

        cfg = load_config(config)
        run_federated(
            cfg,
            site_column,
            rounds=rounds,
            strategy=strategy,
            local_epochs=local_epochs,
            proximal_mu=proximal_mu,
            out_dir=out,
            mode=mode,
            compare=compare,
            n_boot=n_boot,
            console=err_console,
        )

    guard(run)
