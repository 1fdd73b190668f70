"""Parameter and FLOP counts match hand-computed values on models where they are known."""

from __future__ import annotations

import torch
from torch import nn

from fusiondx.evaluation.complexity import count_parameters, flops_per_case


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(10, 20)
        self.b = nn.Linear(20, 3)
        self.b.weight.requires_grad_(False)

    def forward(self, inputs: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(inputs["x"])))


def test_counts_parameters_and_matmul_flops_per_case() -> None:
    model = _Linear()
    assert count_parameters(model) == 10 * 20 + 20 + 20 * 3 + 3
    assert count_parameters(model, trainable_only=True) == 10 * 20 + 20 + 3
    x = {"x": torch.randn(8, 10)}
    assert flops_per_case(model, x, torch.ones(8, 1, dtype=torch.bool)) == 2 * (10 * 20 + 20 * 3)
    assert model.training, "the model's mode is restored"
