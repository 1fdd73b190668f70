"""The two model shapes: feature-level fusion (early, intermediate) and decision-level (late)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import fusiondx
from fusiondx.data.store import prepare
from fusiondx.heads import HeadContext
from fusiondx.models.build import build_model
from fusiondx.models.late import LateFusion
from fusiondx.models.multimodal import FeatureFusion, MultimodalModel


@pytest.fixture(scope="module")
def prepared(cohort_dir: Path) -> Any:
    from tests.conftest import QUICK

    raw = {
        **QUICK,
        "data": {**QUICK["data"], "manifest": str(cohort_dir / "manifest.csv")},
        "tasks": [
            {"name": "diagnosis", "label": "label"},
            {"name": "lesion", "head": "localization", "label": "lesion_box"},
        ],
    }
    cfg = fusiondx.load_config(raw)
    return cfg, prepare(cfg)


def _build(cfg: Any, prepared: Any, fusion: str, tasks: int = 2) -> MultimodalModel:
    cfg = cfg.model_copy(
        update={
            "fusion": cfg.fusion.model_copy(update={"name": fusion}),
            "tasks": cfg.tasks[:tasks],
        }
    )
    torch.manual_seed(0)
    return build_model(cfg, prepared.specs, prepared.tasks[:tasks])


def test_each_level_builds_its_model_with_the_weight_names_of_earlier_runs(prepared: Any) -> None:
    cfg, p = prepared
    late = _build(cfg, p, "late_stacking", tasks=1)
    assert isinstance(late, LateFusion) and late.level == "late"
    keys = set(late.state_dict())
    # model.pt of runs trained before keep loading: fusion.<task>.*, heads.<task>.<modality>.*
    assert any(k.startswith("fusion.diagnosis.") for k in keys)
    assert {k.split(".")[2] for k in keys if k.startswith("heads.diagnosis.")} == set(
        late.modalities
    )
    assert set(late.meta_learners()) == {"diagnosis"}
    assert late.task_head("diagnosis") is next(iter(late.heads["diagnosis"].values()))
    for fusion, level in (("concat", "intermediate"), ("early_concat", "early")):
        model = _build(cfg, p, fusion, tasks=1)
        assert isinstance(model, FeatureFusion) and model.level == level
        assert {k.split(".")[0] for k in model.state_dict()} == {"encoders", "fusion", "heads"}
        assert model.task_head("diagnosis") is model.heads["diagnosis"]


def test_late_fusion_answers_like_every_model(prepared: Any) -> None:
    cfg, p = prepared
    model = _build(cfg, p, "late_average", tasks=1).eval()
    batch = p.store.batch(p.store.indices("test")[:5])
    out = model.predict(batch["inputs"], batch["mask"])["diagnosis"]
    per_modality = model.modality_probs(batch["inputs"])["diagnosis"]
    assert out.shape == (5, 1) and set(per_modality) == set(model.modalities)
    # late_average of the present modalities' probabilities, back to logits
    mask = batch["mask"].float()
    stacked = torch.stack([per_modality[m][:, 0] for m in model.modalities], 1)
    mean = (stacked * mask).sum(1) / mask.sum(1)
    assert torch.allclose(torch.sigmoid(out[:, 0]), mean, atol=1e-5)


def test_image_maps_come_from_the_same_encoder_pass_as_the_embedding(prepared: Any) -> None:
    cfg, p = prepared
    model = _build(cfg, p, "concat").eval()
    assert isinstance(model, FeatureFusion) and model.map_modalities() == {"cxr"}
    calls = []
    enc = model.encoders["cxr"]
    original = enc.forward_maps

    def counted(x: torch.Tensor) -> Any:
        calls.append(1)
        return original(x)

    enc.forward_maps = counted  # type: ignore[method-assign]
    batch = p.store.batch(p.store.indices("test")[:4])
    with torch.no_grad():
        out = model.predict(batch["inputs"], batch["mask"])
    assert len(calls) == 1 and out["lesion"].shape[0] == 4


def test_a_context_handed_maps_does_not_compute_them() -> None:
    ctx = HeadContext(
        torch.ones(2, 1, dtype=torch.bool),
        ["img"],
        lambda m: pytest.fail("computed again"),
        lambda m: pytest.fail("no tokens"),
    )
    maps = [torch.zeros(2, 3, 4, 4)]
    ctx.provide_maps("img", maps)
    assert ctx.maps("img") is maps


def test_every_level_gives_one_feature_vector_per_case(prepared: Any) -> None:
    """``features`` (what active learning's diversity compares): the fused vector where there is
    one, else every modality's embedding side by side, zero where the modality is absent."""
    cfg, p = prepared
    idx = p.store.indices("test")[:6]
    batch = p.store.batch(idx)
    mask = batch["mask"].clone()
    mask[0, 1:] = False  # the first case keeps its first modality only
    with torch.no_grad():
        for fusion in ("concat", "early_concat"):
            model = _build(cfg, p, fusion, tasks=1).eval()
            fused, _ = model.encode(batch["inputs"], mask)
            assert torch.equal(model.features(batch["inputs"], mask), fused)
        late = _build(cfg, p, "late_average", tasks=1).eval()
        feats = late.features(batch["inputs"], mask)
        emb = late.embed(batch["inputs"])
        dims = [emb[m].shape[1] for m in late.modalities]
        assert feats.shape == (6, sum(dims))
        first, rest = feats[0, : dims[0]], feats[0, dims[0] :]
        assert torch.equal(first, emb[late.modalities[0]][0]) and not rest.any()
