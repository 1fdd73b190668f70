"""The fused embedding a trained run computes for each case: what the drift between sites is
measured on.

For early and intermediate fusion it is the fusion's output, the vector the heads read; for
late fusion, which fuses predictions rather than vectors, the modality encoders' embeddings
side by side. A missing modality is masked exactly as in prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusiondx.data.dataset import to_device
from fusiondx.data.store import prepare_with_state
from fusiondx.engine.datamodule import CaseDataModule
from fusiondx.engine.rundir import RunDir


@torch.no_grad()
def run_embeddings(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(case ids, their saved split, fused embeddings (N, D))`` for every case of the run's
    own manifest, decoded with its fitted preprocessing."""
    run = RunDir(run_dir)
    cfg, model, state = run.load()
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=False
    )
    store = prepared.store
    split = run.splits(store.ids)
    loader = CaseDataModule.from_config(cfg, store, train=False).inference_loader(
        np.arange(len(store))
    )
    captured: list[torch.Tensor] = []

    def keep(_m: Any, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 2:
            captured.append(out.detach().float().cpu())

    hook = model.fusion.register_forward_hook(keep)
    chunks = []
    try:
        for batch in loader:
            captured.clear()
            inputs, mask = to_device(batch["inputs"], torch.device("cpu")), batch["mask"]
            model.predict(inputs, mask)
            if captured:
                chunks.append(captured[-1])
            else:  # late fusion: the encoders' embeddings, missing ones zeroed
                emb = model.embed(inputs)
                chunks.append(
                    torch.cat(
                        [emb[m] * mask[:, k : k + 1] for k, m in enumerate(model.modalities)], 1
                    ).float()
                )
    finally:
        hook.remove()
    return store.ids, split, torch.cat(chunks).numpy()
