"""Segmentation head: ignored cases, metrics of a perfect mask, learning a synthetic lesion, 3D."""

from __future__ import annotations

import json

import pytest
import torch

from fusiondx.encoders.image_cnn import CNNEncoder
from fusiondx.errors import ConfigError
from fusiondx.heads._base import HeadContext
from fusiondx.heads.segmentation import SegmentationHead
from fusiondx.registry import HEADS, create_head

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def squares(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images with a bright square in 3 of 4 (the others have no lesion), and the masks."""
    x = 0.3 * torch.randn(n, 1, SIZE, SIZE, generator=g)
    mask = torch.zeros(n, 1, SIZE, SIZE, dtype=torch.uint8)
    for i in range(n):
        if i % 4 == 3:
            continue
        s = int(torch.randint(5, 12, (1,), generator=g))
        x0, y0 = (int(v) for v in torch.randint(0, SIZE - s + 1, (2,), generator=g))
        x[i, 0, y0 : y0 + s, x0 : x0 + s] += 1.0
        mask[i, 0, y0 : y0 + s, x0 : x0 + s] = 1
    return x, mask


def context(enc: CNNEncoder, x: torch.Tensor) -> HeadContext:
    mask = torch.ones(x.shape[0], 1, dtype=torch.bool)
    return HeadContext(
        mask,
        ["img"],
        compute_maps=lambda m: enc.forward_maps(x)[0],
        compute_tokens=lambda m: (enc.forward_tokens(x), None),
    )


def _head(**kw) -> SegmentationHead:
    options = {"in_dim": 4, "image": "img", "map_channels": [8, 16], "image_size": (SIZE, SIZE)}
    return create_head("segmentation", **{**options, **kw})


def test_ignored_cases_do_not_change_the_loss() -> None:
    head = _head()
    g = torch.Generator().manual_seed(0)
    _, target = squares(4, g)
    logits = torch.randn(4, 1, SIZE, SIZE, generator=g)
    base = head.loss(logits, target)
    ignored = torch.full((2, 1, SIZE, SIZE), 255, dtype=torch.uint8)
    more = head.loss(
        torch.cat([logits, 5 * torch.randn(2, 1, SIZE, SIZE, generator=g)]),
        torch.cat([target, ignored]),
    )
    assert torch.isfinite(base) and more.item() == pytest.approx(base.item(), rel=1e-6)
    logits.requires_grad_(True)
    none = head.loss(logits[:2], ignored)
    assert none.item() == 0.0 and none.requires_grad


def test_loss_prefers_the_right_mask_and_stays_finite_without_lesions() -> None:
    head = _head()
    _, target = squares(4, torch.Generator().manual_seed(1))
    right = torch.where(target == 1, 4.0, -4.0)
    assert head.loss(right, target) < head.loss(-right, target) - 0.5
    # A batch without lesion: defined (smoothing), near 0 for a confident empty prediction, and
    # false positives still cost.
    empty = torch.zeros_like(target)
    clean, noisy = head.loss(torch.full(target.shape, -12.0), empty), head.loss(right, empty)
    assert torch.isfinite(clean) and clean < 0.05 and noisy > 0.5


def test_a_perfect_logit_map_scores_dice_one() -> None:
    head = _head()
    _, target = squares(8, torch.Generator().manual_seed(2))
    target[5] = 255  # a case without image: left out of the metrics
    logits = torch.where(target == 1, 10.0, -10.0)
    m = head.evaluate(logits, target)
    assert set(m) == {"dice", "iou", "dice_lesion", "iou_lesion"}
    assert m["dice_lesion"] == pytest.approx(1.0) and m["iou_lesion"] == pytest.approx(1.0)
    assert m["dice"] == pytest.approx(1.0)
    shifted = torch.roll(logits, shifts=3, dims=-1)
    assert head.evaluate(shifted, target)["dice_lesion"] < 0.9
    torch.testing.assert_close(head.probabilities(logits), logits.sigmoid())


def test_the_head_learns_to_segment_a_square() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    enc = CNNEncoder(in_channels=1, out_dim=4, dropout=0.0, widths=(16, 32, 32))
    head = _head(map_channels=enc.map_channels(), width=16)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    fused = torch.zeros(16, 4)  # no context in this task: the image says it all
    for _ in range(150):
        x, target = squares(16, g)
        loss = head.loss(head(fused, context(enc, x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval()
    head.eval()
    x, target = squares(64, g)
    with torch.no_grad():
        m = head.evaluate(head(torch.zeros(64, 4), context(enc, x)), target)
    assert m["dice_lesion"] > 0.9, m  # reaches ~0.97-0.99 over seeds


def test_3d_volumes_and_the_config_round_trip() -> None:
    torch.manual_seed(0)
    enc = CNNEncoder(in_channels=1, spatial_dims=3, out_dim=4, widths=(8, 16, 16))
    head = _head(map_channels=enc.map_channels(), image_size=(16, 16, 16), spatial_dims=3, width=8)
    x = torch.randn(2, 1, 16, 16, 16)
    logits = head(torch.randn(2, 4), context(enc, x))
    assert logits.shape == (2, 1, 16, 16, 16)
    target = torch.zeros(2, 1, 16, 16, 16, dtype=torch.uint8)
    target[0, 0, 4:9, 5:10, 2:7] = 1
    loss = head.loss(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters()
    )
    cfg = json.loads(json.dumps(head.get_config()))  # stored as JSON in run folders
    rebuilt = type(head)(**cfg)
    rebuilt.load_state_dict(head.state_dict())
    head.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt(torch.ones(2, 4), context(enc, x)), head(torch.ones(2, 4), context(enc, x))
        )
    assert HEADS.get("segmentation").summary and head.needs == frozenset({"maps"})


def test_film_makes_the_fused_vector_matter_and_none_ignores_it() -> None:
    torch.manual_seed(0)
    enc = CNNEncoder(in_channels=1, out_dim=4, widths=(8, 16)).eval()
    x = torch.randn(2, 1, SIZE, SIZE)
    for condition, matters in (("film", True), ("none", False)):
        head = _head(map_channels=enc.map_channels(), condition=condition)
        for p in head.parameters():  # FiLM starts as the identity: make it do something
            torch.nn.init.normal_(p, std=0.3)
        with torch.no_grad():
            a, b = head(torch.zeros(2, 4), context(enc, x)), head(torch.ones(2, 4), context(enc, x))
        assert (not torch.allclose(a, b)) is matters, condition


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="image_size"):
        _head(image_size=(SIZE, SIZE, SIZE))
    with pytest.raises(ConfigError, match="spatial_dims"):
        _head(spatial_dims=1, image_size=(SIZE,))
    with pytest.raises(ConfigError, match="condition"):
        _head(condition="cross_attention")
    with pytest.raises(ConfigError, match="threshold"):
        _head(threshold=1.5)
