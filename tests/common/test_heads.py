"""The common head suite: every registered head, built from a small fused input and its context.

A head's inputs come from ``CASES`` below, one small entry per head (what it is built with, the
context it reads, a batch of targets, the shape its ``forward`` declares and how a missing target
is written); a new head fails here until it has one. Capabilities come from the head's tags
(computed from its class): ``maps`` / ``tokens`` (context it reads), ``late`` (probabilities and
back), ``missing_targets`` (cases without a target are left out of the loss).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from fusiondx.heads._base import HeadContext
from fusiondx.registry import HEADS

B, D = 6, 12  # cases, width of the fused vector (and of the tokens)
SIZE = 16  # image side of the maps heads
V, L, BOS, EOS, PAD = 16, 8, 2, 3, 0  # the generation head's vocabulary and report length

pytestmark = pytest.mark.usefixtures("one_thread")


def _nan_rows(t: torch.Tensor, rows: list[int]) -> torch.Tensor:
    t = t.clone().float()
    t[rows] = float("nan")
    return t


def _fill_rows(value: int) -> Callable[[torch.Tensor, list[int]], torch.Tensor]:
    def blank(t: torch.Tensor, rows: list[int]) -> torch.Tensor:
        t = t.clone()
        t[rows] = value
        return t

    return blank


def _boxes(g: torch.Generator) -> torch.Tensor:
    lo = torch.rand(B, 2, generator=g) * 0.5
    return torch.cat(
        [lo, lo + 0.1 + torch.rand(B, 2, generator=g) * 0.4], dim=1
    )  # xyxy inside the image


def _reports(g: torch.Generator) -> torch.Tensor:
    tgt = torch.full((B, L), PAD, dtype=torch.long)
    tgt[:, 0] = BOS
    for i in range(B):
        k = 2 + i % (L - 3)
        tgt[i, 1 : k + 1] = torch.randint(4, V, (k,), generator=g)
        tgt[i, k + 1] = EOS
    return tgt


@dataclass
class Case:
    """How to exercise one head: options besides ``in_dim``, its context, targets and output shape."""

    options: dict[str, Any]
    target: Callable[[torch.Generator], torch.Tensor]
    shape: tuple[int, ...]
    blank: Callable[[torch.Tensor, list[int]], torch.Tensor] | None = None
    """Writes the given rows of a target as missing (heads tagged ``missing_targets``)."""
    teacher_forced: bool = False
    """``forward`` reads the target (a decoder trained with teacher forcing)."""


MAPS = {"image": "img", "map_channels": [4, 8]}
CASES: dict[str, Case] = {
    "classification": Case(
        {"num_classes": 3, "task": "multiclass"}, lambda g: torch.arange(B) % 3, (B, 3)
    ),
    "regression": Case({}, lambda g: torch.randn(B, generator=g), (B,), _nan_rows),
    "survival": Case(
        {},
        lambda g: torch.stack(
            [1 + 9 * torch.rand(B, generator=g), (torch.arange(B) % 2 == 0).float()], dim=1
        ),
        (B, 1),
        _nan_rows,
    ),
    "localization": Case(MAPS, _boxes, (B, 4), _nan_rows),
    "segmentation": Case(
        {**MAPS, "image_size": (SIZE, SIZE)},
        lambda g: (torch.rand(B, 1, SIZE, SIZE, generator=g) > 0.7).to(torch.uint8),
        (B, 1, SIZE, SIZE),
        _fill_rows(255),
    ),
    "generation": Case(
        {"vocab_size": V, "max_length": L, "bos_id": BOS, "eos_id": EOS, "pad_id": PAD},
        _reports,
        (B, L - 1, V),
        _fill_rows(PAD),
        teacher_forced=True,
    ),
}


def _case(name: str) -> Case:
    assert name in CASES, (
        f"head '{name}' has no entry in CASES of tests/common/test_heads.py: add its "
        "options, targets and output shape there"
    )
    return CASES[name]


def _inputs(seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """A fused batch and every context a head may read, all leaves that collect gradients."""
    g = torch.Generator().manual_seed(seed)
    fused = torch.randn(B, D, generator=g, requires_grad=True)
    maps = [
        torch.randn(B, 4, SIZE // 2, SIZE // 2, generator=g, requires_grad=True),
        torch.randn(B, 8, SIZE // 4, SIZE // 4, generator=g, requires_grad=True),
    ]
    tokens = {
        "img": torch.randn(B, 4, D, generator=g, requires_grad=True),
        "note": torch.randn(B, 3, D, generator=g, requires_grad=True),
    }
    real = torch.ones(B, 3, dtype=torch.bool)
    real[:, -1] = False  # padding tokens
    mask = torch.ones(B, 2, dtype=torch.bool)
    mask[1::2, 1] = False  # the note is missing in every other case
    return fused, {"maps": maps, "tokens": tokens, "real": real, "mask": mask}


def _context(inp: dict[str, Any]) -> HeadContext:
    toks = {"img": (inp["tokens"]["img"], None), "note": (inp["tokens"]["note"], inp["real"])}
    return HeadContext(
        inp["mask"],
        ["img", "note"],
        compute_maps=lambda m: inp["maps"],
        compute_tokens=lambda m: toks[m],
    )


def _build(name: str, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return HEADS.create(name, in_dim=D, **_case(name).options)


def _forward(
    head: Any, name: str, fused: torch.Tensor, ctx: HeadContext, target: torch.Tensor
) -> Any:
    return head(fused, ctx, target) if _case(name).teacher_forced else head(fused, ctx)


NAMES = HEADS.names()


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_the_declared_shape(name: str) -> None:
    head = _build(name).train()
    fused, inp = _inputs()
    target = _case(name).target(torch.Generator().manual_seed(1))
    out = _forward(head, name, fused, _context(inp), target)
    assert tuple(out.shape) == _case(name).shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_and_reaches_inputs_and_parameters(name: str) -> None:
    head = _build(name).train()
    fused, inp = _inputs()
    target = _case(name).target(torch.Generator().manual_seed(1))
    loss = head.loss(_forward(head, name, fused, _context(inp), target), target)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    tags = HEADS.get(name).tags
    read = (
        [fused]
        + (inp["maps"] if "maps" in tags else [])
        + (list(inp["tokens"].values()) if "tokens" in tags else [])
    )
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in read), (
        "an input the head reads got no gradient"
    )
    assert sum(t.grad.abs().sum() for t in read) > 0, "no gradient reaches the head's inputs"
    if "maps" not in tags and "tokens" not in tags:
        assert fused.grad.abs().sum() > 0
    for n, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"no finite gradient for {n}"


@pytest.mark.parametrize("name", [n for n in NAMES if "missing_targets" in HEADS.get(n).tags])
def test_cases_without_a_target_are_left_out(name: str) -> None:
    case = _case(name)
    assert case.blank is not None, (
        f"head '{name}' skips missing targets: give CASES['{name}'] a blank"
    )
    head = _build(name).eval()
    fused, inp = _inputs()
    target = case.target(torch.Generator().manual_seed(1))
    out = _forward(head, name, fused, _context(inp), target).detach().requires_grad_()
    gone, keep = [1, 4], [0, 2, 3, 5]
    loss = head.loss(out, case.blank(target, gone))
    torch.testing.assert_close(loss, head.loss(out[keep], target[keep]))
    loss.backward()
    assert out.grad[gone].abs().sum() == 0, "a case without a target moved the loss"
    nothing = head.loss(out, case.blank(target, list(range(B))))
    assert nothing.item() == 0.0 and nothing.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_state_dict(name: str) -> None:
    head = _build(name)
    cfg = json.loads(json.dumps(head.get_config()))  # run folders keep configs as JSON/YAML
    torch.manual_seed(123)  # another init: the equality below must come from the state_dict
    rebuilt = HEADS.create(name, **cfg)
    rebuilt.load_state_dict(head.state_dict(), strict=True)
    head.eval()
    rebuilt.eval()
    fused, inp = _inputs()
    target = _case(name).target(torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            _forward(rebuilt, name, fused, _context(inp), target),
            _forward(head, name, fused, _context(inp), target),
            atol=0,
            rtol=0,
        )


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_reports_the_primary_metric(name: str) -> None:
    head = _build(name).eval()
    fused, inp = _inputs()
    target = _case(name).target(torch.Generator().manual_seed(1))
    with torch.no_grad():
        pred = (
            head.predict(fused, _context(inp))
            if head.decodes
            else _forward(head, name, fused, _context(inp), target)
        )
    metrics = head.evaluate(pred, target)
    assert head.primary_metric in metrics


@pytest.mark.parametrize("name", [n for n in NAMES if "late" in HEADS.get(n).tags])
def test_late_heads_map_outputs_to_probabilities_and_back(name: str) -> None:
    head = _build(name).eval()
    fused, inp = _inputs()
    with torch.no_grad():
        out = head(fused, _context(inp))
        probs = head.to_probs(out)
    assert ((probs >= 0) & (probs <= 1)).all()
    torch.testing.assert_close(head.to_probs(head.from_probs(probs)), probs, atol=1e-5, rtol=1e-4)
