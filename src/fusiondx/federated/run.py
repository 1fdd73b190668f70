"""``federate``: federated training across the sites of one manifest, beside the centralised
model and each site's own, all tested on the same cases (see docs/federated.md)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from fusiondx.config import Config
from fusiondx.data.sites import site_slug as slug
from fusiondx.errors import ConfigError, RunError
from fusiondx.federated.report import write_report
from fusiondx.federated.sites import Cohort, split_sites

MODES = ("simulation", "processes")
STRATEGIES = ("fedavg", "fedprox")


def federate(
    cfg: Config,
    site_column: str,
    *,
    rounds: int = 5,
    strategy: str = "fedavg",
    local_epochs: int = 1,
    proximal_mu: float = 0.01,
    out_dir: Path | None = None,
    mode: str = "simulation",
    compare: bool = True,
    n_boot: int = 1000,
    timeout_s: float = 600.0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train ``cfg``'s model by federated rounds over the sites of ``site_column``; with
    ``compare``, also the centralised model and each site's own; write ``results.json``,
    ``results.md`` and ``rounds.png`` in ``out_dir`` and return the results."""
    _check(strategy, mode, rounds, local_epochs, proximal_mu, STRATEGIES)
    try:
        import flwr  # noqa: F401
    except ImportError:
        raise RunError(
            "Federated training needs Flower (flwr), which is not installed.",
            fix="pip install 'fusiondx[federated]'",
        ) from None
    from fusiondx.federated.flower import Traffic, make_server, make_strategy
    from fusiondx.study.study import study_metric

    console = console or Console(stderr=True)
    out = (out_dir or cfg.output_dir / f"{cfg.name}_federated").resolve()
    out.mkdir(parents=True, exist_ok=True)
    cohort = split_sites(cfg, site_column, out)
    task = cfg.study.task or cfg.tasks[0].name
    metric = study_metric(cfg, task)
    traffic = Traffic()
    n = len(cohort.sites)
    strat = make_strategy(strategy, n, local_epochs, proximal_mu, metric, traffic)
    server = make_server(cfg, strat, n, wait_s=int(timeout_s))
    console.print(
        f"Federated {strategy}: {n} sites ({', '.join(s.name for s in cohort.sites)}), "
        f"{rounds} round(s) of {local_epochs} local epoch(s), {mode} ..."
    )
    start = time.perf_counter()
    if mode == "simulation":
        history = _simulation(server, cohort, out, metric, task, rounds)
    else:
        history = _processes(server, cohort, out, metric, task, rounds, timeout_s)
    seconds = time.perf_counter() - start
    fed, tasks = _federated_predictions(server, cohort, out)
    frames = {"federated": fed}
    if compare:
        frames |= _baselines(cohort, out, console)
    results = write_report(
        out,
        cohort=cohort,
        frames=frames,
        info=next(t for t in tasks if t.name == task),
        metric=metric,
        n_boot=n_boot,
        federation={
            "strategy": strategy,
            "mode": mode,
            "rounds": rounds,
            "local_epochs": local_epochs,
            "proximal_mu": proximal_mu if strategy == "fedprox" else None,
            "bytes_to_sites": traffic.to_sites,
            "bytes_from_sites": traffic.from_sites,
            "bytes_total": traffic.to_sites + traffic.from_sites,
            "traffic_per_round": traffic.per_round,
            "seconds": round(seconds, 2),
            "rounds_run": len(history.metrics_distributed.get(metric, [])),
            "per_round": {
                k: [[int(r), float(v)] for r, v in vals]
                for k, vals in history.metrics_distributed.items()
            },
            "preprocessing": "federated statistics (counts, means, squared deviations, "
            "category values, word counts; no rows)",
        },
        console=console,
    )
    return results


def _check(
    strategy: str, mode: str, rounds: int, epochs: int, mu: float, strategies: tuple[str, ...]
) -> None:
    if strategy not in strategies:
        raise ConfigError(
            f"Unknown strategy '{strategy}'.", fix=f"use one of: {', '.join(strategies)}"
        )
    if mode not in MODES:
        raise ConfigError(f"Unknown mode '{mode}'.", fix=f"use one of: {', '.join(MODES)}")
    if rounds < 1 or epochs < 1:
        raise ConfigError(
            f"--rounds ({rounds}) and --local-epochs ({epochs}) must be at least 1.",
            fix="give positive numbers",
        )
    if mu < 0:
        raise ConfigError(f"--proximal-mu is {mu}; it cannot be negative.", fix="use e.g. 0.01")


def _simulation(server: Any, cohort: Cohort, out: Path, metric: str, task: str, rounds: int) -> Any:
    from fusiondx.federated.flower import SiteClient, simulate

    clients = [
        SiteClient(s.name, s.cfg, out / "sites" / slug(s.name), metric, task) for s in cohort.sites
    ]
    for c in clients:
        c.work.mkdir(parents=True, exist_ok=True)
    history = simulate(server, clients, rounds)
    server.site_models = {c.name: c.model for c in clients}
    return history


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes(
    server: Any, cohort: Cohort, out: Path, metric: str, task: str, rounds: int, timeout_s: float
) -> Any:
    """Flower's gRPC server here, one client process per site, all on loopback."""
    from flwr.server import ServerConfig, start_server

    address = f"127.0.0.1:{free_port()}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for s in cohort.sites:
            folder = out / "sites" / slug(s.name)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.yaml").write_text(s.cfg.to_yaml())
            log = (folder / "client.log").open("wb")
            logs.append(log)
            cmd = [sys.executable, "-m", "fusiondx.federated.client", str(folder / "config.yaml"),
                   "--site", s.name, "--server", address, "--metric", metric, "--task", task,
                   "--wait", str(int(timeout_s))]  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        history = start_server(
            server_address=address,
            server=server,
            config=ServerConfig(num_rounds=rounds, round_timeout=timeout_s),
        )
        for p in procs:
            p.wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    bad = [s.name for s, p in zip(cohort.sites, procs, strict=True) if p.returncode != 0]
    if bad:
        raise RunError(
            f"The client process of site(s) {', '.join(bad)} failed.",
            file=out / "sites" / slug(bad[0]) / "client.log",
            fix="read the client's log",
        )
    return history


def _federated_predictions(
    server: Any, cohort: Cohort, out: Path
) -> tuple[pd.DataFrame, list[Any]]:
    """The final global model's test predictions at every site (each site scores its own)."""
    from flwr.common import parameters_to_ndarrays

    from fusiondx.federated.site import SiteModel

    weights = parameters_to_ndarrays(server.parameters)
    local = getattr(server, "site_models", {})
    frames = []
    for s in cohort.sites:
        m = local.get(s.name) or SiteModel(
            s.name, s.cfg, server.states, out / "sites" / slug(s.name)
        )
        m.set_weights(weights)
        frames.append(m.predictions("test"))
    frame = pd.concat(frames, ignore_index=True)
    (out / "federated").mkdir(exist_ok=True)
    frame.to_csv(out / "federated" / "predictions.csv", index=False)
    np.savez(out / "federated" / "weights.npz", *weights)
    return _test_frame(out / "federated" / "predictions.csv"), m.prepared.tasks


def _test_frame(path: Path) -> pd.DataFrame:
    f = pd.read_csv(path, dtype={"case_id": str}).query("split == 'test'").set_index("case_id")
    return f.sort_index()


def _baselines(cohort: Cohort, out: Path, console: Console) -> dict[str, pd.DataFrame]:
    """``fit`` on the pooled cases (centralised) and on each site's cases alone."""
    from fusiondx.engine.run import fit

    def run(cfg: Config, name: str) -> Path:
        c = cfg.model_copy(update={"name": name, "output_dir": out / "runs"})
        return fit(c, overwrite=True, progress=False).run_dir

    console.print("Centralised: every site's training cases pooled ...")
    frames = {"centralised": _test_frame(run(cohort.pooled, "centralised") / "predictions.csv")}
    alone = []
    for s in cohort.sites:
        console.print(f"Site {s.name} alone ...")
        alone.append(_test_frame(run(s.cfg, f"alone_{slug(s.name)}") / "predictions.csv"))
    frames["sites alone"] = pd.concat(alone).sort_index()
    return frames
