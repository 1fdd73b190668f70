"""Per-modality attributions on a trained model: shapes, finiteness, tokens, completeness."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fusiondx.explanations import image, signal, tabular, text
from fusiondx.explanations._target import Target, probability
from fusiondx.explanations.case import _texts, read_cases


@pytest.fixture(scope="module")
def case(loaded: tuple[Any, Any, Any]) -> tuple[Any, Any, Any, Target, Any]:
    """A case with every modality present, and the positive class as the target."""
    cfg, model, prepared = loaded
    store = prepared.store
    pos = int(np.flatnonzero(store.mask.all(1))[0])
    batch = store.batch([pos])
    return model, prepared, batch, Target(prepared.tasks[0], 1), pos


def test_grad_cam_has_the_image_shape_and_is_finite(case: Any, one_thread: Any) -> None:
    model, _, batch, target, _ = case
    layer = image.cam_layer(model, "cxr", batch["inputs"], batch["mask"])
    assert layer is model.encoders["cxr"].features  # the CNN's last feature map
    heat, method = image.image_attribution(model, target, batch["inputs"], batch["mask"], "cxr")
    assert method == "Grad-CAM"
    assert heat.shape == (1, *batch["inputs"]["cxr"].shape[2:])
    assert np.isfinite(heat).all() and (heat >= 0).all() and heat.max() > 0
    r, c = image.argmax_point(heat[0])
    assert heat[0, r, c] == heat.max()


def test_signal_attributions_cover_every_sample_and_add_up(case: Any, one_thread: Any) -> None:
    model, _, batch, target, _ = case
    x = batch["inputs"]["ecg"]
    attr = signal.signal_attribution(model, target, batch["inputs"], batch["mask"], "ecg", 64)
    assert attr.shape == tuple(x.shape) and np.isfinite(attr).all()
    # Integrated Gradients' completeness: the attributions sum to f(x) - f(flat signal).
    flat = {**batch["inputs"], "ecg": torch.zeros_like(x)}
    with torch.no_grad():
        gap = float(
            probability(model, target, batch["inputs"], batch["mask"])
            - probability(model, target, flat, batch["mask"])
        )
    assert attr.sum() == pytest.approx(gap, abs=0.1 * abs(gap) + 2e-3)


def test_text_attributions_align_with_the_tokens(
    case: Any, loaded: tuple[Any, Any, Any], one_thread: Any
) -> None:
    model, prepared, batch, target, pos = case
    ids = batch["inputs"]["report"]
    scores = text.token_attribution(model, target, batch["inputs"], batch["mask"], "report")
    assert scores.shape == tuple(ids.shape) and np.isfinite(scores).all()
    assert (scores[ids.numpy() == 0] == 0).all() and np.abs(scores).max() > 0
    tok = prepared.preprocessors["report"].tokenizer
    cfg = loaded[0]
    df = read_cases(cfg, cfg.data.manifest)
    texts = _texts(cfg, prepared, df, [pos])
    ts = text.token_scores(ids[0].numpy(), scores[0], tok, texts["report"][pos])
    real = ids[0].numpy()[ids[0].numpy() != 0]
    assert len(ts.tokens) == len(ts.scores) == len(real)
    assert ts.tokens == [tok.id_to_token(int(i)) for i in real]
    # Offsets point at the very words: each token (without WordPiece's ##) is its span's text.
    assert ts.spans is not None and ts.text is not None
    for t, (a, b) in zip(ts.tokens, ts.spans, strict=True):
        assert ts.text[a:b] == t.removeprefix("##") or t == "[UNK]"
    page = text.token_html(ts)
    assert page.count('class="tok"') == len(real)


def test_tabular_attributions_name_every_column(case: Any, one_thread: Any) -> None:
    model, prepared, batch, target, _ = case
    num, cat = tabular.tabular_attribution(model, target, batch["inputs"], batch["mask"], "labs")
    pre = prepared.preprocessors["labs"]
    assert num.shape == (1, len(pre.numeric)) and cat.shape == (1, len(pre.categorical))
    assert np.isfinite(num).all() and np.isfinite(cat).all()
    assert np.abs(np.concatenate([num[0], cat[0]])).max() > 0


@pytest.mark.parametrize(
    ("encoder", "options"),
    [("image_vit", {"patch_size": 8, "num_layers": 1}), ("image_resnet", {}), ("lowlevel", {})],
)
def test_every_kind_of_image_encoder_gets_an_image_sized_map(
    loaded: tuple[Any, Any, Any], encoder: str, options: dict[str, Any], one_thread: Any
) -> None:
    """Untrained models are enough: the attribution's shape and finiteness, not its meaning."""
    from fusiondx.models.build import build_model

    cfg, _, prepared = loaded
    mods = [
        m.model_copy(
            update={"encoder": m.encoder.model_copy(update={"name": encoder, "options": options})}
        )
        if m.name == "cxr"
        else m
        for m in cfg.modalities
    ]
    fusion = cfg.fusion.model_copy(
        update={"name": "early_concat" if encoder == "lowlevel" else "concat"}
    )
    model = build_model(
        cfg.model_copy(update={"modalities": mods, "fusion": fusion}),
        prepared.specs,
        prepared.tasks,
    ).eval()
    store = prepared.store
    batch = store.batch(np.flatnonzero(store.mask.all(1))[:2])
    heat, method = image.image_attribution(
        model, Target(prepared.tasks[0], 1), batch["inputs"], batch["mask"], "cxr"
    )
    assert heat.shape == (2, *batch["inputs"]["cxr"].shape[2:]) and np.isfinite(heat).all()
    assert method in ("Grad-CAM", "Integrated Gradients")
