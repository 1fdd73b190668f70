"""MedFuse: the LSTM reads exactly the present modalities, in sorted order, and a case's output
is what the LSTM gives on that case alone."""

from __future__ import annotations

import pytest
import torch

from fusiondx.registry import create_fusion

DIMS = {"c": 6, "a": 4, "b": 5}  # given unsorted on purpose
MASK = torch.tensor(
    [[True, False, True], [False, True, True], [False, False, True], [True, True, True]]
)


def _setup(num_layers: int = 1):
    torch.manual_seed(0)
    f = create_fusion("medfuse", in_dims=DIMS, out_dim=3, hidden=8, num_layers=num_layers).eval()
    feats = {m: torch.randn(4, d) for m, d in DIMS.items()}
    return f, feats


def test_sequence_holds_the_present_modalities_in_sorted_order_then_zeros() -> None:
    f, feats = _setup()
    steps, lengths = f.sequence(feats, MASK)
    assert lengths.tolist() == [2, 2, 1, 3]
    names = ["a", "b", "c"]
    for b in range(4):
        present = [m for j, m in enumerate(names) if MASK[b, j]]
        for t, m in enumerate(present):
            assert torch.allclose(steps[b, t], f.proj[m](feats[m][b]))
        assert torch.equal(steps[b, len(present) :], torch.zeros_like(steps[b, len(present) :]))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_each_case_equals_the_lstm_run_on_its_present_modalities_alone(num_layers: int) -> None:
    f, feats = _setup(num_layers)
    out = f(feats, MASK)
    for b in range(4):
        seq = torch.stack([f.proj[m](feats[m][b]) for j, m in enumerate("abc") if MASK[b, j]])
        _, (h_n, _) = f.lstm(seq.unsqueeze(0))  # a sequence of length n_present, no padding
        assert torch.allclose(out[b], f.out(h_n[-1, 0]), atol=1e-6)


def test_a_missing_modality_is_no_step_at_all_not_a_zero_step() -> None:
    f, feats = _setup()
    out = f(feats, MASK)
    # case 0 has a and c: a zero step for the missing b in between would give another answer
    seq = torch.stack([f.proj["a"](feats["a"][0]), torch.zeros(8), f.proj["c"](feats["c"][0])])
    _, (h_n, _) = f.lstm(seq.unsqueeze(0))
    assert not torch.allclose(out[0], f.out(h_n[-1, 0]), atol=1e-4)


def test_the_order_of_the_present_modalities_matters() -> None:
    f, feats = _setup()
    seq = torch.stack([f.proj[m](feats[m][3]) for m in "cba"])  # reversed order
    _, (h_n, _) = f.lstm(seq.unsqueeze(0))
    assert not torch.allclose(f(feats, MASK)[3], f.out(h_n[-1, 0]), atol=1e-4)
