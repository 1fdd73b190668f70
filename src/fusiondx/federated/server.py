"""The coordinating site's server process for a real federation: ``python -m
fusiondx.federated.server CONFIG --sites N --address 0.0.0.0:9092 --rounds R``.

It holds no data: it waits for ``N`` site clients (:mod:`fusiondx.federated.client`), agrees
the preprocessing from their statistics, runs the rounds with Flower's strategy, and writes
``history.json`` (each site's validation metric per round, bytes sent), ``weights.npz`` (the
global model) and ``preprocessing.json`` (the agreed state) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import fusiondx.federated  # noqa: F401  (before Flower: telemetry off)
from fusiondx.config import load_config


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fusiondx.federated.server")
    ap.add_argument("config", type=Path, help="the shared config (its manifest is not read)")
    ap.add_argument("--sites", type=int, required=True, help="how many site clients to wait for")
    ap.add_argument("--address", default="0.0.0.0:9092", help="where to listen, HOST:PORT")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--strategy", default="fedavg", help="fedavg or fedprox")
    ap.add_argument("--local-epochs", type=int, default=1)
    ap.add_argument("--proximal-mu", type=float, default=0.01)
    ap.add_argument("--metric", default="auroc")
    ap.add_argument("--wait", type=int, default=3600, help="seconds to wait for the sites")
    ap.add_argument("--out", type=Path, default=Path("federated_server"))
    ap.add_argument(
        "--certificates",
        type=Path,
        nargs=3,
        metavar=("CA", "CERT", "KEY"),
        help="CA certificate, server certificate and key: serve with TLS",
    )
    a = ap.parse_args(argv)
    import numpy as np
    from flwr.common import parameters_to_ndarrays
    from flwr.server import ServerConfig, start_server

    from fusiondx.federated.flower import Traffic, make_server, make_strategy

    cfg = load_config(a.config)
    traffic = Traffic()
    strategy = make_strategy(a.strategy, a.sites, a.local_epochs, a.proximal_mu, a.metric, traffic)
    server = make_server(cfg, strategy, a.sites, wait_s=a.wait)
    history = start_server(
        server_address=a.address,
        server=server,
        config=ServerConfig(num_rounds=a.rounds),
        certificates=tuple(p.read_bytes() for p in a.certificates) if a.certificates else None,
    )
    a.out.mkdir(parents=True, exist_ok=True)
    np.savez(a.out / "weights.npz", *parameters_to_ndarrays(server.parameters))
    (a.out / "preprocessing.json").write_text(json.dumps(server.states))
    record = {
        "sites": server.sites,
        "rounds": a.rounds,
        "strategy": a.strategy,
        "bytes_to_sites": traffic.to_sites,
        "bytes_from_sites": traffic.from_sites,
        "per_round": {k: v for k, v in history.metrics_distributed.items()},
    }
    (a.out / "history.json").write_text(json.dumps(record, indent=1))
    print(
        f"Wrote {a.out / 'history.json'}, {a.out / 'weights.npz'}, {a.out / 'preprocessing.json'}"
    )


if __name__ == "__main__":
    main()
