"""shared_space: CLIP's symmetric InfoNCE between every pair of present modalities."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fusiondx._nn import info_nce, pairwise_info_nce
from fusiondx.registry import create_fusion


def test_info_nce_equals_a_hand_computed_cross_entropy_on_3x3() -> None:
    torch.manual_seed(0)
    a = F.normalize(torch.randn(3, 4), dim=-1)
    b = F.normalize(torch.randn(3, 4), dim=-1)
    scale = 5.0
    sim = [[scale * float(a[i] @ b[j]) for j in range(3)] for i in range(3)]
    rows = [-sim[i][i] + math.log(sum(math.exp(sim[i][j]) for j in range(3))) for i in range(3)]
    cols = [-sim[j][j] + math.log(sum(math.exp(sim[i][j]) for i in range(3))) for j in range(3)]
    expected = 0.5 * (sum(rows) / 3 + sum(cols) / 3)
    assert math.isclose(float(info_nce(a, b, scale)), expected, rel_tol=1e-5)


def test_pairs_are_scored_only_over_cases_where_both_are_present() -> None:
    torch.manual_seed(1)
    mask = torch.tensor(
        [
            [True, True, True],
            [True, True, False],
            [True, False, True],
            [True, True, False],
            [False, False, True],
        ]
    )  # pair (0,1): cases 0,1,3; pair (0,2): cases 0,2; pair (1,2): case 0 only -> excluded
    z = F.normalize(torch.randn(5, 3, 6), dim=-1)
    z = torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z))
    scale = torch.tensor(7.0)
    got = pairwise_info_nce(z, mask, scale)
    expected = []
    for i, j in ((0, 1), (0, 2)):
        both = mask[:, i] & mask[:, j]
        expected.append(info_nce(z[both, i], z[both, j], scale))
    assert torch.allclose(got, torch.stack(expected).mean(), atol=1e-5)
    # no pair with two cases: nothing to contrast, a zero loss
    lonely = torch.tensor([[True, True, False], [False, False, True]])
    assert float(pairwise_info_nce(z[:2], lonely, scale)) == 0.0


def _fusion(**kw):
    return create_fusion("shared_space", in_dims={"a": 5, "b": 6, "c": 7}, out_dim=8, **kw)


def test_the_fusion_aux_loss_is_the_weighted_pairwise_clip_loss_of_its_projections() -> None:
    torch.manual_seed(2)
    f = _fusion(aux_weight=0.3).train()
    feats = {"a": torch.randn(6, 5), "b": torch.randn(6, 6), "c": torch.randn(6, 7)}
    mask = torch.rand(6, 3) > 0.3
    mask[:3] = True
    f(feats, mask)
    proj = f.project(feats, mask)
    z = torch.stack([proj[m] for m in ("a", "b", "c")], dim=1)
    expected = 0.3 * pairwise_info_nce(z, mask, f.logit_scale_value())
    assert torch.allclose(f.aux_losses["contrastive"], expected)


def test_projections_are_unit_length_absent_ones_zero_and_the_scale_capped() -> None:
    torch.manual_seed(3)
    f = _fusion(temperature=0.07).eval()
    assert math.isclose(float(f.logit_scale_value().detach()), 1 / 0.07, rel_tol=1e-5)
    feats = {"a": torch.randn(3, 5), "b": torch.randn(3, 6), "c": torch.full((3, 7), float("nan"))}
    mask = torch.tensor([[True, True, False], [True, False, False], [False, True, False]])
    z = f.project(feats, mask)
    assert set(z) == {"a", "b", "c"} and z["a"].shape == (3, 64)
    norms = torch.stack([z[m].norm(dim=-1) for m in ("a", "b", "c")], dim=1)
    assert torch.allclose(norms, mask.float(), atol=1e-5)
    with torch.no_grad():
        f.logit_scale.fill_(math.log(1000.0))
    assert float(f.logit_scale_value().detach()) == 100.0


def test_eval_is_deterministic_and_sets_no_aux_loss() -> None:
    torch.manual_seed(4)
    f = _fusion().eval()
    feats = {"a": torch.randn(4, 5), "b": torch.randn(4, 6), "c": torch.randn(4, 7)}
    mask = torch.tensor([[True, True, True], [True, False, True], [False, True, False], [True] * 3])
    assert torch.equal(f(feats, mask), f(feats, mask)) and f.aux_losses == {}


def test_training_the_contrastive_loss_aligns_the_modalities_for_retrieval(one_thread) -> None:
    # Two views of one hidden factor per case: after training on the CLIP loss alone, a case's
    # view a must retrieve its own view b among the others far above chance (1 in 32).
    torch.manual_seed(5)
    n = 32
    hidden = torch.randn(n, 4)
    feats = {
        "a": hidden @ torch.randn(4, 10) + 0.05 * torch.randn(n, 10),
        "b": hidden @ torch.randn(4, 12) + 0.05 * torch.randn(n, 12),
    }
    mask = torch.ones(n, 2, dtype=torch.bool)
    f = create_fusion("shared_space", in_dims={"a": 10, "b": 12}, out_dim=4, shared_dim=8).train()
    opt = torch.optim.Adam(f.parameters(), lr=0.02)

    def top1() -> float:
        z = f.project(feats, mask)
        return float(((z["a"] @ z["b"].T).argmax(dim=1) == torch.arange(n)).float().mean())

    before = top1()
    for _ in range(60):
        f(feats, mask)
        loss = f.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = top1()
    assert after >= 0.8 > before + 0.3
