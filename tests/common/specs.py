"""Tiny modality specs and random inputs for the component test suites (encoders, fusions, models).

``small_spec(kind)`` gives a ModalitySpec small enough for a 2-core CPU; ``random_input(spec, b)``
gives one modality's batch tensor (or dict, for tabular) in the layout of :mod:`fusiondx.types`;
``build_encoder(name, spec)`` builds a registered encoder from a spec the way the model builder
does (only the spec fields its constructor names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from fusiondx.types import ModalitySpec

SMALL_SPECS: dict[str, ModalitySpec] = {
    "image": ModalitySpec("image", "image", in_channels=2, spatial_dims=2, image_size=(32, 32)),
    "image3d": ModalitySpec(
        "volume", "image", in_channels=1, spatial_dims=3, image_size=(16, 16, 16)
    ),
    "signal": ModalitySpec("ecg", "signal", in_channels=2, length=128),
    "text": ModalitySpec("report", "text", vocab_size=50, max_length=12),
    "tabular": ModalitySpec("labs", "tabular", n_numeric=3, cardinalities=(4, 5)),
}


def small_spec(kind: str, *, spatial_dims: int = 2) -> ModalitySpec:
    """A tiny spec for ``kind`` (``image``, ``signal``, ``text``, ``tabular``)."""
    if kind == "image" and spatial_dims == 3:
        return SMALL_SPECS["image3d"]
    return SMALL_SPECS[kind]


def random_input(
    spec: ModalitySpec,
    batch_size: int = 3,
    *,
    generator: torch.Generator | None = None,
    missing_rows: Iterable[int] = (),
) -> Any:
    """A random batch of one modality; rows in ``missing_rows`` are missing-modality placeholders.

    Text rows have different lengths (right padding, id 0); tabular rows have some numeric
    values flagged missing and some categorical ids 0 (missing) or 1 (unseen). A placeholder row
    is zeros (image, signal), all padding (text), or all missing (tabular).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    b = batch_size
    rows = list(missing_rows)
    if spec.kind == "image":
        x = torch.randn(b, spec.in_channels, *spec.image_size, generator=g)
        x[rows] = 0.0
        return x
    if spec.kind == "signal":
        x = torch.randn(b, spec.in_channels, spec.length, generator=g)
        x[rows] = 0.0
        return x
    if spec.kind == "text":
        L = spec.max_length
        x = torch.randint(1, spec.vocab_size, (b, L), generator=g)
        for i in range(b):
            x[i, max(1, L - 3 * i) :] = 0  # row 0 full length, later rows shorter
        x[rows] = 0
        return x
    if spec.kind == "tabular":
        n, k = spec.n_numeric, len(spec.cardinalities)
        numeric = torch.randn(b, n, generator=g)
        i = torch.arange(b).unsqueeze(1)
        missing = ((i + torch.arange(n)) % 3 == 1).float()  # some, never all, values missing
        numeric = numeric * (1 - missing)
        cat = (
            torch.stack([torch.randint(0, c, (b,), generator=g) for c in spec.cardinalities], dim=1)
            if k
            else torch.zeros(b, 0, dtype=torch.long)
        )
        numeric[rows], missing[rows], cat[rows] = 0.0, 1.0, 0
        return {"numeric": numeric, "numeric_missing": missing, "categorical": cat}
    raise ValueError(f"unknown modality kind {spec.kind!r}")


def batch_size_of(x: Any) -> int:
    """Batch size of one modality's input (tensor or tabular dict)."""
    if isinstance(x, dict):
        return next(iter(x.values())).shape[0]
    return x.shape[0]


def build_encoder(name: str, spec: ModalitySpec, *, out_dim: int = 10, **options: Any) -> Any:
    """Build the registered encoder ``name`` for ``spec``, as the model builder does."""
    import fusiondx.encoders  # noqa: F401  (registers the encoders)
    from fusiondx.registry import ENCODERS

    cls = ENCODERS.get(name).cls
    return ENCODERS.create(name, **spec.encoder_kwargs(cls), out_dim=out_dim, **options)
