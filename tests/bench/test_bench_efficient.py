"""bench/efficient.py's model pair: the efficient preset meets the FLOPs goal by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench._common import default_config
from bench.efficient import GOAL_FLOPS_CUT, efficient_config
from fusiondx.data.store import prepare
from fusiondx.evaluation.complexity import flops_per_case
from fusiondx.models.build import build_model


def test_efficient_model_needs_80_percent_fewer_flops_per_case(cohort_dir: Path, tmp_path: Path):
    base = default_config(cohort_dir / "manifest.csv", tmp_path)
    eff = efficient_config(base)
    assert eff.preset == "efficient" and eff.fusion.name == "concat"
    assert eff.fusion.dim == base.fusion.dim and eff.name == "efficient"
    assert base.train.lr == 1e-3 and eff.train.lr == 3e-3  # the preset's, not the demo's
    assert {m.encoder_name for m in eff.modalities} == {
        "image_cnn",
        "signal_mobile",
        "text_transformer",
        "tabular_mlp",
    }
    prepared = prepare(base, progress=False)
    store = prepared.store
    batch = store.batch(np.arange(1))
    mask = torch.ones_like(batch["mask"])
    flops = {
        k: flops_per_case(
            build_model(c, prepared.specs, prepared.tasks, None), batch["inputs"], mask
        )
        for k, c in (("default", base), ("efficient", eff))
    }
    assert flops["efficient"] <= (1 - GOAL_FLOPS_CUT) * flops["default"]
