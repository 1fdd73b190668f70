"""Localization head: GIoU, the loss on known cases, and learning boxes of a synthetic lesion."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fusiondx.encoders.image_cnn import CNNEncoder
from fusiondx.errors import ConfigError
from fusiondx.heads._base import HeadContext
from fusiondx.heads.localization import LocalizationHead, generalized_iou
from fusiondx.registry import HEADS, create_head

SIZE = 32
NAN = float("nan")


pytestmark = pytest.mark.usefixtures("one_thread")


def squares(n: int, g: torch.Generator, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images with one bright square per channel, and each square's box (n, channels, 4).

    With two channels the squares do not overlap, so only a cue from outside the image can tell
    which one is the lesion.
    """
    x = 0.3 * torch.randn(n, channels, SIZE, SIZE, generator=g)
    boxes = torch.zeros(n, channels, 4)
    for i in range(n):
        for c in range(channels):
            while True:
                s = int(torch.randint(6, 12, (1,), generator=g))
                x0, y0 = (int(v) for v in torch.randint(0, SIZE - s + 1, (2,), generator=g))
                box = torch.tensor([x0, y0, x0 + s, y0 + s]) / SIZE
                if c == 0 or generalized_iou(box[None], boxes[i, 0][None]).item() < -0.05:
                    break
            x[i, c, y0 : y0 + s, x0 : x0 + s] += 1.0
            boxes[i, c] = box
    return x, boxes


def context(enc: CNNEncoder, x: torch.Tensor) -> HeadContext:
    mask = torch.ones(x.shape[0], 1, dtype=torch.bool)
    return HeadContext(
        mask,
        ["img"],
        compute_maps=lambda m: enc.forward_maps(x)[0],
        compute_tokens=lambda m: (enc.forward_tokens(x), None),
    )


def train(condition: str, channels: int, steps: int = 200, seed: int = 0) -> float:
    """Train a cnn encoder + head on the squares; mean IoU on held-out images.

    The fused vector is a one-hot of the lesion's channel (what the other modalities know).
    """
    torch.manual_seed(seed)
    enc = CNNEncoder(in_channels=channels, out_dim=8, dropout=0.0, widths=(16, 32, 32))
    head = LocalizationHead(
        in_dim=channels,
        image="img",
        map_channels=enc.map_channels(),
        hidden=32,
        condition=condition,
    )
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(seed)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, boxes = squares(n, g, channels)
        which = torch.randint(0, channels, (n,), generator=g)
        return x, torch.eye(channels)[which], boxes[torch.arange(n), which]

    for _ in range(steps):
        x, fused, target = batch(32)
        loss = head.loss(head(fused, context(enc, x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval()
    head.eval()
    x, fused, target = batch(128)
    with torch.no_grad():
        pred = head(fused, context(enc, x))
    return generalized_iou_to_iou(pred, target).mean().item()


def generalized_iou_to_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Plain IoU of aligned boxes (the test's own, independent of the evaluation module)."""
    inter = (
        (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    )
    area = (a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area - inter)


def test_generalized_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [0.1, 0.2, 0.4, 0.9]])
    b = torch.tensor([[2.0, 0.0, 3.0, 1.0], [1.0, 1.0, 3.0, 3.0], [0.1, 0.2, 0.4, 0.9]])
    giou = generalized_iou(a, b)
    # disjoint: IoU 0, hull 3, union 2; overlapping: IoU 1/7, hull 9, union 7; identical: 1
    torch.testing.assert_close(giou, torch.tensor([-1 / 3, 1 / 7 - 2 / 9, 1.0]), atol=1e-5, rtol=0)
    assert generalized_iou(a[:1], b[:1]).item() < 0


def _head(**kw) -> LocalizationHead:
    return create_head(
        "localization", **{"in_dim": 4, "image": "img", "map_channels": [8, 16], **kw}
    )


def test_loss_is_zero_for_perfect_boxes_and_positive_otherwise() -> None:
    head = _head()
    target = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.8]])
    assert head.loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-5)
    off = target + torch.tensor([0.05, 0.0, 0.05, 0.0])
    assert head.loss(off, target).item() > 0.1


def test_rows_without_a_box_are_ignored() -> None:
    head = _head()
    pred = torch.tensor([[0.1, 0.1, 0.4, 0.5], [0.2, 0.3, 0.6, 0.7]], requires_grad=True)
    target = torch.tensor([[0.15, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6]])
    base = head.loss(pred, target)
    more = head.loss(
        torch.cat([pred, torch.tensor([[0.0, 0.0, 1.0, 1.0]])]),
        torch.cat([target, torch.full((1, 4), NAN)]),
    )
    assert torch.isfinite(more) and more.item() == pytest.approx(base.item(), rel=1e-6)
    none = head.loss(pred, torch.full((2, 4), NAN))
    assert none.item() == 0.0 and none.requires_grad  # the graph stays connected
    none.backward()
    assert torch.isfinite(pred.grad).all()


def test_outputs_are_valid_boxes_and_the_config_rebuilds_the_head() -> None:
    torch.manual_seed(0)
    enc = CNNEncoder(in_channels=1, out_dim=4, widths=(8, 16, 16)).eval()
    head = _head(map_channels=enc.map_channels(), hidden=16)
    x = torch.randn(3, 1, SIZE, SIZE)
    boxes = head(torch.randn(3, 4), context(enc, x))
    assert boxes.shape == (3, 4)
    assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[:, 2:] >= boxes[:, :2]).all()
    cfg = json.loads(json.dumps(head.get_config()))  # stored as JSON in run folders
    rebuilt = type(head)(**cfg)
    rebuilt.load_state_dict(head.state_dict())
    torch.testing.assert_close(
        rebuilt(torch.zeros(3, 4), context(enc, x)), head(torch.zeros(3, 4), context(enc, x))
    )
    assert HEADS.get("localization").summary and head.needs == frozenset({"maps"})


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="2D"):
        _head(spatial_dims=3)
    with pytest.raises(ConfigError, match="condition"):
        _head(condition="concat")
    head = _head()
    enc = CNNEncoder(in_channels=1, out_dim=4, widths=(8, 16, 32))
    with pytest.raises(ValueError, match="map_channels"):
        head(torch.zeros(1, 4), context(enc, torch.zeros(1, 1, SIZE, SIZE)))


def test_the_head_learns_to_box_a_square() -> None:
    iou = train("film", channels=1)
    assert iou > 0.6, iou


def test_the_fused_context_picks_the_lesion_among_two_findings() -> None:
    # Two squares, one per channel; only the fused vector says which is the lesion.
    film = train("film", channels=2)
    blind = train("none", channels=2)
    assert film > 0.5 and film > blind + 0.2, (film, blind)
    assert not math.isnan(blind)
