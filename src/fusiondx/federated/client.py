"""A site's client process: ``python -m fusiondx.federated.client SITE_CONFIG --site NAME
--server HOST:PORT`` (what each hospital runs; ``fusiondx federate --mode processes`` starts
one per site on loopback). The config's manifest holds that site's rows only."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusiondx.config import load_config
from fusiondx.federated.flower import SiteClient


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fusiondx.federated.client")
    ap.add_argument("config", type=Path, help="the site's config (its manifest: its own rows)")
    ap.add_argument("--site", required=True, help="the site's name, as the server reports it")
    ap.add_argument("--server", required=True, help="the coordinating server, HOST:PORT")
    ap.add_argument("--metric", default="auroc")
    ap.add_argument("--task", default=None, help="the task scored each round (default: first)")
    ap.add_argument(
        "--work", type=Path, default=None, help="scratch folder (default: beside config)"
    )
    ap.add_argument(
        "--root-certificates", type=Path, default=None, help="CA certificate: connect with TLS"
    )
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to keep trying to connect")
    a = ap.parse_args(argv)
    from flwr.client import start_client

    cfg = load_config(a.config)
    task = a.task or cfg.tasks[0].name
    work = a.work or a.config.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    client = SiteClient(a.site, cfg, work, a.metric, task)
    certs = a.root_certificates.read_bytes() if a.root_certificates else None
    start_client(
        server_address=a.server,
        client=client.to_client(),
        insecure=certs is None,
        root_certificates=certs,
        max_wait_time=a.wait,
    )


if __name__ == "__main__":
    main()
