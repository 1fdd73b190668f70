"""M3Care: a missing modality is a convex combination of the batch's patients who have it,
weighted by similarity over the modalities both patients have; without donors, a learned vector."""

from __future__ import annotations

import torch

from fusiondx.registry import create_fusion

DIMS = {"a": 5, "b": 7, "c": 6}
MASK = torch.tensor(
    [
        [True, False, True],
        [False, True, True],
        [True, True, False],
        [True, True, True],
        [False, False, True],
    ]
)


def _setup(**options):
    torch.manual_seed(0)
    f = create_fusion("m3care", in_dims=DIMS, out_dim=4, d_model=8, num_heads=2, **options).eval()
    feats = {m: torch.randn(5, d) for m, d in DIMS.items()}
    return f, feats


def test_missing_modality_is_a_convex_combination_of_the_patients_who_have_it() -> None:
    f, feats = _setup()
    completed, weights, h = f.impute(feats, MASK)
    for i in range(5):
        for m in range(3):
            w = weights[i, m]
            donors = MASK[:, m].clone()
            donors[i] = False
            assert (w >= 0).all() and (w[~donors] == 0).all()  # only patients having m, not i
            if not MASK[i, m]:
                assert torch.isclose(w.sum(), torch.tensor(1.0), atol=1e-6)
                assert torch.allclose(completed[i, m], (w.unsqueeze(1) * h[:, m]).sum(0), atol=1e-6)
    # patient 0 misses b: donors are 1, 2 and 3, all of which share a or c with it
    assert (weights[0, 1, [1, 2, 3]] > 0).all()


def test_similarity_uses_only_the_modalities_both_patients_have() -> None:
    f, feats = _setup()
    h = f.embed(feats, MASK)
    sim = f.similarity(h, MASK)
    assert torch.equal(sim, sim.t()) and (sim.diagonal() == 0).all()
    # patients 2 (a, b) and 4 (c) share nothing: not neighbours
    assert sim[2, 4] == 0
    # patients 0 (a, c) and 4 (c): only c counts, so changing patient 0's a changes nothing
    moved = {m: x.clone() for m, x in feats.items()}
    moved["a"][0] += 3.0
    assert torch.isclose(f.similarity(f.embed(moved, MASK), MASK)[0, 4], sim[0, 4])
    bw = 0.05 + f.log_bandwidth.exp()
    z = f.kernel["c"](h[:, 2])
    expected = torch.exp(-((z[0] - z[4]) ** 2).mean() / bw[2])
    assert torch.isclose(sim[0, 4], expected, atol=1e-6)


def test_the_more_similar_patient_donates_more() -> None:
    f, _ = _setup()
    base = torch.randn(1, 5)
    feats = {
        "a": torch.cat([base, base + 0.01, base + 3.0]),  # patient 1 is like patient 0, 2 is not
        "b": torch.randn(3, 7),
        "c": torch.randn(3, 6),
    }
    mask = torch.tensor([[True, False, False], [True, True, False], [True, True, False]])
    _, weights, _ = f.impute(feats, mask)
    assert weights[0, 1, 1] > weights[0, 1, 2] > 0


def test_without_donor_the_learned_vector_stands_in_and_a_batch_of_one_works() -> None:
    f, feats = _setup()
    one = {m: x[:1] for m, x in feats.items()}
    completed, weights, _ = f.impute(one, MASK[:1])
    assert (weights == 0).all()
    assert torch.allclose(completed[0, 1], f.missing[1])
    assert torch.isfinite(f(one, MASK[:1])).all()
    # a threshold no similarity passes leaves no neighbour either
    g, _ = _setup(threshold=1.0)
    completed, weights, _ = g.impute(feats, MASK)
    assert (weights == 0).all() and torch.allclose(completed[0, 1], g.missing[1])


def test_prediction_depends_on_the_batch_but_is_deterministic_for_a_batch() -> None:
    f, feats = _setup()
    out = f(feats, MASK)
    assert torch.equal(out, f(feats, MASK))
    other = {m: x.clone() for m, x in feats.items()}
    other["b"][3] += 2.0  # a donor of patient 0's missing b
    assert not torch.allclose(out[0], f(other, MASK)[0])


def test_without_blending_a_present_modality_is_its_own_embedding() -> None:
    f, feats = _setup(blend_present=False)
    completed, _, h = f.impute(feats, MASK)
    assert torch.allclose(completed[MASK], h[MASK])
    g, _ = _setup(blend_present=True)
    completed, _, h = g.impute(feats, MASK)
    assert not torch.allclose(completed[MASK], h[MASK])
