"""Flex-MoE: missing modalities come from a bank indexed by the present combination, tokens go to
their top-k experts, and the load-balancing and combination-routing losses match their equations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fusiondx.errors import ConfigError
from fusiondx.fusion.flex_moe import combination
from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 7, "c": 6}
MASK = torch.tensor(
    [[True, False, True], [False, True, False], [True, True, True], [True, False, False]]
)


def _setup(**options):
    torch.manual_seed(0)
    options = {"d_model": 8, "num_heads": 2, "dropout": 0.0, **options}
    f = create_fusion("flex_moe", in_dims=DIMS, out_dim=4, **options).eval()
    feats = {m: torch.randn(4, d) for m, d in DIMS.items()}
    return f, feats


def test_missing_tokens_come_from_the_bank_of_the_present_combination() -> None:
    f, feats = _setup()
    assert combination(MASK).tolist() == [0b101, 0b010, 0b111, 0b001]
    tok = f.tokens(feats, MASK)
    emb = f.modality_embedding
    assert torch.allclose(tok[0, 1], f.bank[0b101, 1] + emb[1])  # case 0 misses b
    assert torch.allclose(tok[3, 1], f.bank[0b001, 1] + emb[1])  # case 3 too, other combination
    assert not torch.allclose(tok[0, 1], tok[3, 1])
    assert torch.allclose(tok[0, 0], f.proj["a"](feats["a"][0]) + emb[0])  # present: its own
    g, _ = _setup(condition_on_combination=False)
    tok = g.tokens(feats, MASK)
    assert g.bank.shape[0] == 1 and torch.allclose(tok[0, 1], tok[3, 1])


def test_each_token_goes_to_its_top_k_experts_with_renormalised_weights() -> None:
    f, feats = _setup(num_experts=5, top_k=2)
    logits, gates = f.route(torch.randn(4, 3, 8))
    assert ((gates > 0).sum(-1) == 2).all()
    assert torch.allclose(gates.sum(-1), torch.ones(4, 3))
    chosen = logits.topk(2, dim=-1).indices
    assert torch.equal(gates.gather(-1, chosen) > 0, torch.ones_like(chosen, dtype=torch.bool))
    top = logits.gather(-1, chosen)
    assert torch.allclose(gates.gather(-1, chosen), torch.softmax(top, -1))


def test_experts_are_separate_two_layer_networks() -> None:
    f, _ = _setup(num_experts=3)
    x = torch.randn(2, 3, 8)
    out = f.experts(x)
    for e in range(3):
        by_hand = F.gelu(x @ f.w1[e] + f.b1[e]) @ f.w2[e] + f.b2[e]
        assert torch.allclose(out[:, :, e], by_hand, atol=1e-5)


def test_losses_match_their_equations() -> None:
    f, feats = _setup(num_experts=4, balance_weight=0.5, route_weight=2.0)
    with torch.no_grad():  # a uniform router: every first choice is expert 0
        f.router.weight.zero_()
        f.router.bias.zero_()
    f.train()
    f(feats, MASK)
    # f = (1, 0, 0, 0), P = 1/4 each: E * sum f P = 1; routing CE of a uniform router = log E
    assert torch.isclose(f.aux_losses["balance"], torch.tensor(0.5))
    assert torch.isclose(f.aux_losses["route"], torch.tensor(2.0 * math.log(4)))

    g, _ = _setup(num_experts=3, balance_weight=1.0, route_weight=1.0)
    g.train()
    captured = {}
    g.router.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    g(feats, MASK)
    logits = captured["logits"]  # (B, M, E)
    probs = torch.softmax(logits, -1).reshape(-1, 3)
    share = torch.stack([(logits.argmax(-1) == e).float().mean() for e in range(3)])
    assert torch.isclose(g.aux_losses["balance"], 3 * (share * probs.mean(0)).sum())
    ce = [
        F.cross_entropy(logits[b], torch.full((3,), int(combination(MASK)[b]) % 3))
        for b in range(4)
        if not MASK[b].all()  # case 2 has every modality: routed freely
    ]
    assert torch.isclose(g.aux_losses["route"], torch.stack(ce).mean(), atol=1e-6)


def test_routing_loss_sends_each_incomplete_combination_to_its_expert() -> None:
    f, feats = _setup(num_experts=4, balance_weight=0.0, route_weight=1.0)
    f.train()
    opt = torch.optim.Adam(f.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        f(feats, MASK)
        f.aux_loss().backward()
        opt.step()
    f.eval()
    captured = {}
    f.router.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    f(feats, MASK)
    first = captured["logits"].argmax(-1)
    for b in (0, 1, 3):
        assert (first[b] == int(combination(MASK)[b]) % 4).all()


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="top_k"):
        create_fusion("flex_moe", in_dims=DIMS, out_dim=4, num_experts=2, top_k=3)
    many = {f"m{i}": 2 for i in range(11)}
    with pytest.raises(ConfigError, match="combinations"):
        create_fusion("flex_moe", in_dims=many, out_dim=4)
    assert create_fusion("flex_moe", in_dims=many, out_dim=4, condition_on_combination=False)
