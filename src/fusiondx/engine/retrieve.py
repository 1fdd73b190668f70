"""``fusiondx retrieve``: the nearest cases of one modality to a query of another.

The query is a case id (its ``--from`` modality is used), a file (an image or a signal record of
the ``--from`` modality), or literal text (for a text modality). The gallery is every case of a
manifest that has the ``--to`` modality: by default the pretraining run's own test cases, which
its encoders never trained on. Both are preprocessed with the run's fitted state and compared by
cosine similarity in the shared space of the run's contrastive objective.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from fusiondx.config import Config
from fusiondx.data.manifest import modality_present, read_manifest
from fusiondx.data.store import CaseStore, prepare_with_state
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.encoders_file import PretrainedEncoders, load_encoders
from fusiondx.engine.pretrain_task import PretrainTask
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import ConfigError, RunError
from fusiondx.models.build import build_encoders
from fusiondx.objectives import Objective
from fusiondx.registry import OBJECTIVES
from fusiondx.types import ModalitySpec


def load_pretrained_run(run_dir: Path) -> tuple[Config, PretrainTask, PretrainedEncoders]:
    """The config, the trained encoders and objectives (eval mode), and ``encoders.pt``."""
    run = RunDir(run_dir)
    path = run.encoders_file
    if not run.config_file.is_file() or not path.is_file():
        raise RunError(
            f"'{run.path}' is not a finished `fusiondx pretrain` run (it has no "
            f"{'config.yaml' if not run.config_file.is_file() else 'encoders.pt'}).",
            file=run.path,
            fix="point at the folder `fusiondx pretrain CONFIG` wrote (runs/<name>)",
        )
    cfg = run.config()
    enc = load_encoders(path)
    specs = {m: ModalitySpec.from_dict(d["spec"]) for m, d in enc.modalities.items()}
    encoders = build_encoders(cfg, specs, "intermediate")
    encoders.load_state_dict(
        {k.removeprefix("encoders."): v for k, v in enc.state.items() if k.startswith("encoders.")}
    )
    dims = {m: int(cast(Any, e).out_dim) for m, e in encoders.items()}
    spec_dicts = {m: s.to_dict() for m, s in specs.items()}
    objectives = nn.ModuleDict(
        {
            o["name"]: OBJECTIVES.create(o["name"], dims=dims, specs=spec_dicts, **o["options"])
            for o in enc.objectives
        }
    )
    for name, obj in objectives.items():
        obj.load_state_dict(enc.objective_state(name))
    task = PretrainTask(encoders, objectives, cfg.train).eval()
    return cfg, task, enc


def _state(enc: PretrainedEncoders) -> dict[str, Any]:
    return {
        "preprocessors": {m: d["preprocessor"] for m, d in enc.modalities.items()},
        "specs": {m: d["spec"] for m, d in enc.modalities.items()},
        "tasks": [],
    }


def _query_frame(cfg: Config, source: str, query: str, cases: pd.DataFrame) -> pd.DataFrame:
    """A one-row manifest holding the query in the ``source`` modality's column."""
    id_col = cfg.data.id_column
    hit = cases[cases[id_col].astype(str) == query]
    m = cfg.modality(source)
    if len(hit):
        if not modality_present(hit.head(1), m)[0]:
            raise ConfigError(
                f"Case '{query}' has no '{source}' input to search with.",
                fix=f"pick a case that has '{source}', or give a file or text",
            )
        return hit.head(1)
    if m.kind == "tabular":
        raise ConfigError(
            f"'{query}' is not a case id of the manifest, and a tabular query ('{source}') can "
            "only be given as a case id.",
            fix="give the id of a case whose row holds the values",
        )
    if m.kind != "text" and not Path(query).is_file():
        raise ConfigError(
            f"'{query}' is neither a case id of the manifest nor a file.",
            fix=f"give a case id, or the path of a {m.kind} file of modality '{source}'",
        )
    value = str(Path(query).resolve()) if m.kind != "text" else query
    return pd.DataFrame({id_col: ["<query>"], cast(Any, m).column: [value]})


def retrieve(
    run_dir: Path,
    source: str,
    target: str,
    query: str,
    *,
    data: Path | None = None,
    k: int = 5,
) -> pd.DataFrame:
    """The ``k`` cases whose ``target`` modality is nearest the query's ``source`` modality.

    Returns rank, case_id, similarity, and ``partner`` (True for the query case's own
    ``target`` input, when the query is a case of the gallery).
    """
    cfg, task, enc = load_pretrained_run(run_dir)
    space = next(
        (cast(Objective, o) for o in task.objectives.values() if cast(Objective, o).projects), None
    )
    if space is None:
        raise RunError(
            f"The pretraining run '{run_dir}' has no shared space to search (objectives: "
            f"{', '.join(o['name'] for o in enc.objectives)}).",
            file=Path(run_dir),
            fix="pretrain with the 'contrastive' objective (pretrain.objectives)",
        )
    for name, flag in ((source, "--from"), (target, "--to")):
        if name not in task.modalities:
            raise ConfigError(
                f"{flag} '{name}' is not a modality of the run (it has: {', '.join(task.modalities)}).",
                fix=f"pass {flag} one of: {', '.join(task.modalities)}",
            )
    if source == target:
        raise ConfigError("--from and --to name the same modality.", fix="pick two modalities")
    manifest = data or cfg.data.manifest
    root = manifest.parent if data is not None else cfg.data.data_root
    state = _state(enc)
    gallery = prepare_with_state(cfg, state, manifest, root, need_labels=False)
    store = gallery.store
    if data is None:
        store.split = RunDir(run_dir).splits(store.ids)
        idx = store.indices("test")
    else:
        idx = np.arange(len(store))
    idx = idx[store.mask[idx, store.modalities.index(target)]]
    if len(idx) == 0:
        raise ConfigError(
            f"No case of '{manifest}' has modality '{target}' to search.",
            fix="give --data a manifest whose cases have it",
        )
    cases = read_manifest(manifest, sep=cfg.data.sep, id_column=cfg.data.id_column)
    with tempfile.TemporaryDirectory(prefix="fusiondx-query-") as tmp:
        qpath = Path(tmp) / "query.csv"
        _query_frame(cfg, source, query, cases).to_csv(qpath, index=False, sep=cfg.data.sep)
        # Only the query's modality is read: the other cells of a query are empty.
        qdata = cfg.data.model_copy(update={"patient_column": None, "metadata_columns": []})
        qcfg = cfg.model_copy(update={"modalities": [cfg.modality(source)], "data": qdata})
        qstore = prepare_with_state(qcfg, state, qpath, root, need_labels=False).store
    if not qstore.mask[0, 0]:
        raise ConfigError(
            f"The query '{query}' holds nothing to search with (e.g. a text of whitespace).",
            fix=f"give a case id, a file or a text with content for '{source}'",
        )
    g = _project(task, space, store, cfg, idx)[target]
    q = _project(task, space, qstore, qcfg, np.array([0]))[source]
    sims = (q @ g.T)[0]
    order = torch.argsort(sims, descending=True)[:k].numpy()
    ids = store.ids[idx]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "case_id": ids[order],
            "similarity": sims[order].numpy().round(4),
            "partner": ids[order] == qstore.ids[0],
        }
    )


@torch.no_grad()
def _project(
    task: PretrainTask, space: Objective, store: CaseStore, cfg: Config, idx: np.ndarray
) -> dict[str, torch.Tensor]:
    data = CaseDataModule.from_config(cfg, store, train=False)
    chunks: list[dict[str, torch.Tensor]] = [
        space.project(task.embed(b["inputs"])) for b in data.inference_loader(idx)
    ]
    return {m: torch.cat([c[m] for c in chunks]) for m in chunks[0]}
