"""Flower's side: the client of a site, the server's strategy, and the two ways to run them.

FusionDx drives Flower's gRPC server and client (``flwr.server.start_server`` /
``flwr.client.start_client``: real processes that talk over a socket, which is also how sites in
different hospitals connect) with Flower's own strategies (``FedAvg``, ``FedProx``) and its
server loop (``flwr.server.Server``). Flower 1.42 marks these as superseded by the SuperLink /
SuperNode runtime, whose ``flwr run`` packages an app bundle and whose simulation engine needs
Ray (a large dependency); the gRPC path needs neither and runs the same strategies.

``simulation`` runs the same server loop in one process: each site's client sits behind a
:class:`LocalClientProxy` (a direct call instead of a socket), sites trained one after another.

Before round 1 the server agrees the preprocessing: it asks every client for its ``partial``
statistics (``get_properties``), merges them, and sends the merged state back; only then do the
clients decode their cases and build the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.client import NumPyClient
from flwr.common import GetPropertiesIns, Parameters, parameters_to_ndarrays
from flwr.server import Server, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.history import History
from flwr.server.strategy import FedAvg, FedProx

from fusiondx.config import Config
from fusiondx.errors import ConfigError, RunError
from fusiondx.federated.run import STRATEGIES
from fusiondx.federated.site import SiteModel, merge_statistics, site_statistics


class SiteClient(NumPyClient):
    """A site: answers the statistics round, then trains and evaluates on its own cases."""

    def __init__(self, name: str, cfg: Config, work: Path, metric: str, task: str) -> None:
        self.name, self.cfg, self.work, self.metric, self.task = name, cfg, work, metric, task
        self.model: SiteModel | None = None

    def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
        what = config.get("fusiondx")
        if what == "stats":
            return {"site": self.name, "stats": json.dumps(site_statistics(self.cfg))}
        if what == "state":
            states = json.loads(str(config["state"]))
            self.model = SiteModel(self.name, self.cfg, states, self.work)
            return {"site": self.name, "n_train": self.model.n_train}
        return {"site": self.name}

    def _model(self) -> SiteModel:
        if self.model is None:
            raise RunError(
                f"Site '{self.name}' was asked to train before the preprocessing was agreed.",
                fix="start the server with FusionDx (`fusiondx federate`), which agrees it first",
            )
        return self.model

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        return self._model().get_weights()

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        m = self._model()
        m.set_weights(parameters)
        m.train(int(config.get("local_epochs", 1)), float(config.get("proximal_mu", 0.0)))
        return m.get_weights(), m.n_train, {"site": self.name}

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[float, int, dict[str, Any]]:
        """The global model on this site's validation cases: its metric (and loss = 1 - it,
        which Flower's history needs; NaN where the metric is undefined on the site)."""
        m = self._model()
        m.set_weights(parameters)
        split = str(config.get("split", "val"))
        value = float(m.metrics(split)[self.task].get(self.metric, float("nan")))
        n = len(m.prepared.store.indices(split))
        return 1.0 - value, n, {"site": self.name, self.metric: value}


@dataclass
class Traffic:
    """Parameter arrays' bytes sent each way (sum of ``nbytes``), over every message."""

    to_sites: int = 0
    from_sites: int = 0
    per_round: list[dict[str, Any]] = field(default_factory=list)


def _nbytes(p: Parameters) -> int:
    return int(sum(a.nbytes for a in parameters_to_ndarrays(p)))


def make_strategy(
    name: str,
    n_sites: int,
    local_epochs: int,
    mu: float,
    metric: str,
    traffic: Traffic,
) -> FedAvg:
    """Flower's FedAvg or FedProx over every site each round, counting the bytes it moves."""
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy '{name}'.", fix=f"use one of: {', '.join(STRATEGIES)}")
    base = FedProx if name == "fedprox" else FedAvg

    def aggregate_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        ok = [(n, float(m[metric])) for n, m in results if np.isfinite(float(m[metric]))]
        out: dict[str, Any] = {f"site:{m['site']}": float(m[metric]) for _, m in results}
        total = sum(n for n, _ in ok)
        out[metric] = sum(n * v for n, v in ok) / total if total else float("nan")
        return out

    class Counting(base):  # type: ignore[misc,valid-type]
        def configure_fit(self, server_round, parameters, client_manager):
            ins = super().configure_fit(server_round, parameters, client_manager)
            traffic.to_sites += len(ins) * _nbytes(parameters)
            return ins

        def configure_evaluate(self, server_round, parameters, client_manager):
            ins = super().configure_evaluate(server_round, parameters, client_manager)
            traffic.to_sites += len(ins) * _nbytes(parameters)
            return ins

        def aggregate_fit(self, server_round, results, failures):
            if failures:
                raise RunError(
                    f"{len(failures)} site(s) failed in round {server_round}: {failures[0]!r}",
                    fix="see the site's log; every site must answer every round",
                )
            # A fixed order: the weighted sum's float rounding must not depend on which site
            # answered first.
            results = sorted(results, key=lambda cr: cr[0].cid)
            traffic.from_sites += sum(_nbytes(r.parameters) for _, r in results)
            traffic.per_round.append(
                {
                    "round": server_round,
                    "to_sites": traffic.to_sites,
                    "from_sites": traffic.from_sites,
                }
            )
            return super().aggregate_fit(server_round, results, failures)

    kwargs: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "min_fit_clients": n_sites,
        "min_evaluate_clients": n_sites,
        "min_available_clients": n_sites,
        "on_fit_config_fn": lambda r: {"local_epochs": local_epochs, "round": r},
        "on_evaluate_config_fn": lambda r: {"split": "val", "round": r},
        "evaluate_metrics_aggregation_fn": aggregate_metrics,
        "fit_metrics_aggregation_fn": lambda results: {},
    }
    if name == "fedprox":
        kwargs["proximal_mu"] = mu
    return Counting(**kwargs)


class AgreeingServer(Server):
    """Flower's server loop, preceded by the federated statistics round."""

    def __init__(self, cfg: Config, n_sites: int, wait_s: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg, self.n_sites, self.wait_s = cfg, n_sites, wait_s
        self.states: dict[str, Any] = {}
        self.sites: list[str] = []

    def fit(self, num_rounds: int, timeout: float | None) -> tuple[History, float]:
        cm = self.client_manager()
        if not cm.wait_for(self.n_sites, timeout=self.wait_s):
            raise RunError(
                f"Only {cm.num_available()} of {self.n_sites} site(s) connected within "
                f"{self.wait_s} s.",
                fix="start a client at every site (see docs/federated.md), or raise --wait",
            )
        clients = sorted(cm.all().values(), key=lambda c: c.cid)
        parts, names = [], []
        for c in clients:
            res = c.get_properties(GetPropertiesIns({"fusiondx": "stats"}), timeout, None)
            names.append(str(res.properties["site"]))
            parts.append(json.loads(str(res.properties["stats"])))
        self.sites = names
        self.states = merge_statistics(self.cfg, parts)
        blob = json.dumps(self.states)
        for c in clients:
            c.get_properties(GetPropertiesIns({"fusiondx": "state", "state": blob}), timeout, None)
        return super().fit(num_rounds, timeout)


class LocalClientProxy(ClientProxy):
    """A client called in this process instead of over a socket (``--mode simulation``)."""

    def __init__(self, cid: str, client: NumPyClient) -> None:
        super().__init__(cid)
        self.client = client.to_client()

    def get_properties(self, ins, timeout, group_id):
        return self.client.get_properties(ins)

    def get_parameters(self, ins, timeout, group_id):
        return self.client.get_parameters(ins)

    def fit(self, ins, timeout, group_id):
        return self.client.fit(ins)

    def evaluate(self, ins, timeout, group_id):
        return self.client.evaluate(ins)

    def reconnect(self, ins, timeout, group_id):
        from flwr.common import DisconnectRes

        return DisconnectRes(reason="")


def simulate(server: AgreeingServer, clients: list[SiteClient], rounds: int) -> History:
    """Flower's server loop over in-process clients, one site at a time (reproducible)."""
    cm = server.client_manager()
    for i, c in enumerate(clients):
        cm.register(LocalClientProxy(f"{i:03d}", c))
    server.set_max_workers(1)
    history, _ = server.fit(rounds, timeout=None)
    return history


def make_server(cfg: Config, strategy: FedAvg, n_sites: int, wait_s: int = 120) -> AgreeingServer:
    return AgreeingServer(
        cfg, n_sites, wait_s, client_manager=SimpleClientManager(), strategy=strategy
    )
