"""RandImageAugment: reproducible, shape-preserving, identity when off."""

from __future__ import annotations

import pytest
import torch

from fusiondx.data.augment import RandImageAugment
from fusiondx.errors import ConfigError


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 64, 64, generator=g)


def test_same_seed_same_output() -> None:
    x = _image()
    a = RandImageAugment(flip=True, rotate=15, scale=0.1, seed=3)
    first = [a(x) for _ in range(3)]
    b = RandImageAugment(flip=True, rotate=15, scale=0.1)
    b.set_random_state(3)
    second = [b(x) for _ in range(3)]
    for p, q in zip(first, second, strict=True):
        assert type(p) is torch.Tensor
        assert p.shape == x.shape and p.dtype == x.dtype
        assert torch.equal(p, q)
    assert not torch.equal(first[0], first[1])  # successive draws differ


def test_identity_when_off() -> None:
    x = _image()
    a = RandImageAugment()
    assert a.is_identity
    assert torch.equal(a(x), x)


def test_flip_really_flips() -> None:
    x = _image()
    a = RandImageAugment(flip=True, seed=0)
    seen = set()
    for _ in range(20):
        y = a(x)
        if torch.equal(y, x):
            seen.add("same")
        else:
            assert torch.equal(y, torch.flip(x, dims=[-1]))
            seen.add("flipped")
    assert seen == {"same", "flipped"}


def test_3d_shape_preserved() -> None:
    v = torch.rand(2, 8, 16, 16)
    a = RandImageAugment(flip=True, rotate=10, scale=0.1, spatial_dims=3, seed=1)
    assert a(v).shape == v.shape


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        RandImageAugment(scale=1.5)
    with pytest.raises(ValueError):
        RandImageAugment(rotate=5)(torch.rand(1, 4, 4, 4))
