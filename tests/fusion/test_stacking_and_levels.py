"""late_stacking's meta-learner and multilevel's depth alignment, beyond the common contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

import fusiondx
from fusiondx.engine.inference import predict_outputs
from fusiondx.engine.rundir import load_run
from fusiondx.registry import create_fusion


def _val_probs(
    n: int = 600, seed: int = 0
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """'good' predicts the label, 'noise' does not; 'good' is missing for a fifth of the cases."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).float()
    good = torch.sigmoid(2.5 * (2 * y - 1) + torch.randn(n, generator=g))
    noise = torch.rand(n, generator=g)
    mask = torch.ones(n, 2, dtype=torch.bool)
    mask[: n // 5, 0] = False  # modalities are sorted: good, noise
    return {"good": good[:, None], "noise": noise[:, None]}, mask, y


def test_stacking_learns_to_trust_the_informative_modality() -> None:
    feats, mask, y = _val_probs()
    fusion = create_fusion("late_stacking", in_dims={"good": 1, "noise": 1}, out_dim=1)
    before = fusion(feats, mask)[:, 0]
    fusion.fit_meta(feats, mask, y)
    assert bool(fusion.fitted)
    assert fusion.weight[0, 0] > 3 * abs(fusion.weight[1, 0]), fusion.weight
    after = fusion(feats, mask)[:, 0]
    present = mask[:, 0]
    # the average with a noise modality is worse than stacking on the cases that have 'good'
    assert (
        roc_auc_score(y[present], after[present])
        > roc_auc_score(y[present], before[present]) + 0.02
    )
    # a case with 'good' missing falls back to 'noise' only, not to a zero that looks like data
    probe = {"good": torch.full((1, 1), 0.999), "noise": torch.full((1, 1), 0.5)}
    only_noise = fusion(probe, torch.tensor([[False, True]]))
    probe["good"].fill_(0.001)
    assert torch.allclose(only_noise, fusion(probe, torch.tensor([[False, True]])))


def test_stacking_state_travels_with_state_dict() -> None:
    feats, mask, y = _val_probs()
    fusion = create_fusion("late_stacking", in_dims={"good": 1, "noise": 1}, out_dim=1)
    fusion.fit_meta(feats, mask, y)
    clone = create_fusion("late_stacking", in_dims={"good": 1, "noise": 1}, out_dim=1)
    clone.load_state_dict(fusion.state_dict())
    assert torch.equal(clone(feats, mask), fusion(feats, mask))


def test_stacking_multiclass_outputs_a_distribution() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (300,), generator=g)
    good = torch.softmax(
        3 * torch.nn.functional.one_hot(y, 3).float() + torch.randn(300, 3, generator=g), -1
    )
    feats = {"a": good, "b": torch.softmax(torch.randn(300, 3, generator=g), -1)}
    mask = torch.ones(300, 2, dtype=torch.bool)
    fusion = create_fusion("late_stacking", in_dims={"a": 3, "b": 3}, out_dim=3, task="multiclass")
    fusion.fit_meta(feats, mask, y)
    out = fusion(feats, mask)
    assert torch.allclose(out.sum(-1), torch.ones(300), atol=1e-5)
    assert (out.argmax(-1) == y).float().mean() > (good.argmax(-1) == y).float().mean() - 0.02


def test_stacking_fit_run_saves_the_fitted_meta_learner(quick_config: dict[str, Any]) -> None:
    cfg = quick_config
    cfg["fusion"] = {"name": "late_stacking", "dim": 16}
    res = fusiondx.fit(cfg)
    _, model, _ = load_run(res.run_dir)
    assert all(bool(f.fitted) for f in model.fusion.values())
    # predictions.csv (test) comes from the fitted meta-learner that model.pt reloads
    from fusiondx.data.store import prepare

    store = prepare(fusiondx.load_config(res.run_dir / "config.yaml"), progress=False).store
    idx = store.indices("test")
    probs = torch.sigmoid(predict_outputs(model, store, idx, 64)["diagnosis"])[:, 0].numpy()
    saved = pd.read_csv(res.run_dir / "predictions.csv").query("split == 'test'")
    assert np.allclose(saved["diagnosis_prob_raw_disease"].to_numpy(), probs, atol=1e-5)
    assert np.isfinite(res.metrics["val"]["diagnosis"]["auroc"])


def test_multilevel_aligns_depths_and_trains_through_fit(quick_config: dict[str, Any]) -> None:
    fusion = create_fusion(
        "multilevel",
        in_dims={"a": 8, "b": 8, "c": 8},
        out_dim=8,
        level_dims={"a": [4, 5, 6, 8], "b": [3, 8], "c": [8]},
        depths=3,
    )
    # a: 4 levels over 3 bins (0, 1, 1, 2); b: shallow and deep; c: only the deepest bin
    assert [[(fusion.modalities[i], j) for i, j in s] for s in fusion.slots] == [
        [("a", 0), ("b", 0)],
        [("a", 1), ("a", 2)],
        [("a", 3), ("b", 1), ("c", 0)],
    ]
    cfg = quick_config
    cfg["fusion"] = {"name": "multilevel", "dim": 16}
    res = fusiondx.fit(cfg)
    _, model, _ = load_run(res.run_dir)
    widths = model.fusion.level_dims
    assert widths["cxr"] == [16, 32, 64, 16] and len(widths["labs"]) == 3
    assert np.isfinite(res.metrics["test"]["diagnosis"]["auroc"])


def test_every_level_of_an_encoder_gets_gradient_through_multilevel(tmp_path: Path) -> None:
    from fusiondx.registry import create_encoder

    enc = create_encoder("cnn1d", in_channels=2, out_dim=8)
    fusion = create_fusion(
        "multilevel", in_dims={"ecg": 8}, out_dim=8, level_dims={"ecg": enc.level_dims()}
    )
    fusion(
        ({"ecg": enc.forward_levels(torch.randn(3, 2, 64))}), torch.ones(3, 1, dtype=torch.bool)
    ).sum().backward()
    first_conv = enc.features[0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
