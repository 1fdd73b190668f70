"""Exact Shapley values of the modalities: every subset of modalities is a presence mask.

A FusionDx model already predicts with any modality absent (every fusion honours the mask), so
the value of a coalition S of modalities is the explained class's probability with only S present
(Lundberg & Lee, 2017, with masking as the "removal"; Covert et al., 2021). With M modalities
that is 2^M forward passes of the batch, exact rather than sampled. The base is the prediction
with every modality absent, and the values of a case sum to its prediction minus the base.
A modality the case lacks is absent in every coalition, so its value is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from math import factorial

import numpy as np
import torch

from fusiondx.errors import RunError

MAX_MODALITIES = 8
"""2^8 = 256 forward passes per batch; beyond, exact Shapley values cost too much."""


def subsets(m: int) -> torch.Tensor:
    """(2^m, m) bool: row s holds the modalities of the bit mask s (bit j = modality j)."""
    s = torch.arange(2**m).unsqueeze(1)
    return (s >> torch.arange(m)) & 1 == 1


def check_size(m: int) -> None:
    """Refuse more modalities than exact Shapley values can afford."""
    if m > MAX_MODALITIES:
        raise RunError(
            f"Exact modality Shapley values need 2^{m} = {2**m} forward passes per batch; "
            f"FusionDx computes them for at most {MAX_MODALITIES} modalities.",
            fix="explain a model with fewer modalities (group related inputs into one modality)",
        )


def coalition_values(
    value: Callable[[torch.Tensor], torch.Tensor], present: torch.Tensor
) -> torch.Tensor:
    """(N, 2^M) the value of every coalition for every case.

    Args:
        value: presence masks (S, N, M) -> (S, N) values (the explained probability); S
            coalitions at once, so a caller may run them as one batch or one after another.
        present: (N, M) bool, the modalities each case has.
    """
    m = present.shape[1]
    check_size(m)
    masks = present.unsqueeze(0) & subsets(m).unsqueeze(1)  # (2^M, N, M)
    out = value(masks).detach().float().reshape(2**m, -1).T
    if not torch.isfinite(out).all():
        raise RunError(
            "The model's prediction is not finite for some subset of modalities, so no Shapley "
            "value can be computed.",
            fix="check that the fusion predicts when modalities are absent (`fusiondx study` "
            "robustness shows it)",
        )
    return out


def shapley_from_values(values: torch.Tensor) -> np.ndarray:
    """(N, M) exact Shapley values from (N, 2^M) coalition values (row s: bit mask s)."""
    n_sub = values.shape[1]
    m = n_sub.bit_length() - 1
    v = values.double().numpy()
    weight = [factorial(k) * factorial(m - k - 1) / factorial(m) for k in range(m)]
    size = [bin(s).count("1") for s in range(n_sub)]
    phi = np.zeros((v.shape[0], m))
    for j in range(m):
        bit = 1 << j
        for s in range(n_sub):
            if not s & bit:
                phi[:, j] += weight[size[s]] * (v[:, s | bit] - v[:, s])
    return phi


def shapley(
    value: Callable[[torch.Tensor], torch.Tensor], present: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Shapley values of the modalities for every case.

    Args:
        value: presence masks (S, N, M) -> (S, N) values (the explained probability).
        present: (N, M) bool, the modalities each case has.

    Returns:
        ``(phi (N, M), base (N,), prediction (N,))`` with ``phi.sum(1) == prediction - base``.
    """
    values = coalition_values(value, present.bool())
    v = values.double().numpy()
    return shapley_from_values(values), v[:, 0], v[:, -1]
