"""The common encoder suite: every registered encoder, built from a tiny spec of its kind.

Capabilities come from registry tags (computed from the class), not scattered skips: ``tokens``
(a real token sequence), ``levels`` (features at several depths), ``3d`` (volumes), ``pretrained``
(frozen weights), ``optional`` (needs the modules in the class's ``requires``; marked ``optional``
and skipped where they are absent). Which modules register and the docs tables are checked for
every registry in ``test_registries.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json

import pytest
import torch

from fusiondx.encoders._base import Encoder
from fusiondx.registry import ENCODERS
from fusiondx.types import KINDS, ModalitySpec

try:
    from specs import batch_size_of, build_encoder, random_input, small_spec
except ImportError:  # collected as part of a `tests` package
    from tests.common.specs import batch_size_of, build_encoder, random_input, small_spec

OUT_DIM = 10
SPEC_FIELDS = {f for f in ModalitySpec.__dataclass_fields__ if f not in ("name", "kind")}


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(tag: str | None = None) -> list:
    out = []
    for e in ENCODERS.entries():
        if tag is None or tag in e.tags:
            marks = [pytest.mark.optional] if "optional" in e.tags else []
            out.append(pytest.param(e.name, marks=marks, id=e.name))
    return out


def _build(name: str, spatial_dims: int = 2) -> tuple[Encoder, ModalitySpec]:
    entry = ENCODERS.get(name)
    for module in entry.meta.get("requires", ()):
        pytest.importorskip(module)
    spec = small_spec(entry.meta["kind"], spatial_dims=spatial_dims)
    torch.manual_seed(0)
    return build_encoder(name, spec, out_dim=OUT_DIM), spec


def _input(spec: ModalitySpec, b: int = 3, seed: int = 1, missing_rows: tuple[int, ...] = ()):
    return random_input(
        spec, b, generator=torch.Generator().manual_seed(seed), missing_rows=missing_rows
    )


def _row(x, i: int):
    if isinstance(x, dict):
        return {k: v[i : i + 1] for k, v in x.items()}
    return x[i : i + 1]


# --- behaviour -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _params())
def test_forward_shape_and_finite(name: str) -> None:
    enc, spec = _build(name)
    enc.train()
    out = enc(_input(spec))
    assert out.shape == (3, OUT_DIM)
    assert enc.out_dim == OUT_DIM
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", _params())
def test_backward_reaches_trainable_parameters(name: str) -> None:
    enc, spec = _build(name)
    enc.train()
    out = enc(_input(spec))
    # random weights: a plain sum can cancel (e.g. through a normalisation) and hide a cut graph
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    trainable = [(n, p) for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable, "an encoder must have something to train"
    for n, p in trainable:
        assert p.grad is not None, f"no gradient reaches {n}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {n}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {n}"
    frozen = [(n, p) for n, p in enc.named_parameters() if not p.requires_grad]
    if "pretrained" in ENCODERS.get(name).tags:
        assert frozen, "a pretrained encoder keeps its backbone frozen"
    for n, p in frozen:
        assert p.grad is None, f"frozen {n} got a gradient"


@pytest.mark.parametrize("name", _params())
def test_batch_of_one_matches_batch(name: str) -> None:
    enc, spec = _build(name)
    enc.eval()
    x = _input(spec)
    with torch.no_grad():
        full = enc(x)
        one = enc(_row(x, 1))
    assert one.shape == (1, OUT_DIM)
    torch.testing.assert_close(one, full[1:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", _params())
def test_eval_is_deterministic(name: str) -> None:
    enc, spec = _build(name)
    enc.eval()
    x = _input(spec)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc(x), atol=0, rtol=0)


@pytest.mark.parametrize("name", _params())
def test_config_round_trip_and_state_dict(name: str) -> None:
    enc, spec = _build(name)
    cfg = enc.get_config()
    assert cfg["out_dim"] == OUT_DIM
    # configs are stored as JSON/YAML in run folders: tuples come back as lists
    cfg = json.loads(json.dumps(cfg))
    torch.manual_seed(123)  # a different init, so the equality below comes from the state_dict
    rebuilt = ENCODERS.create(name, **cfg)
    assert type(rebuilt) is type(enc)
    rebuilt.load_state_dict(enc.state_dict(), strict=True)
    enc.eval()
    rebuilt.eval()
    x = _input(spec)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), enc(x), atol=0, rtol=0)
    assert type(enc)(**enc.get_config()).get_config() == enc.get_config()


@pytest.mark.parametrize("name", _params())
def test_tokens_shape_and_mask(name: str) -> None:
    enc, spec = _build(name)
    enc.eval()
    x = _input(spec)
    with torch.no_grad():
        tokens = enc.forward_tokens(x)
    assert tokens.ndim == 3 and tokens.shape[0] == 3 and tokens.shape[2] == OUT_DIM
    assert torch.isfinite(tokens).all()
    if "tokens" in ENCODERS.get(name).tags:
        assert tokens.shape[1] > 1, "a 'tokens' encoder returns a real sequence"
    mask = enc.token_mask(x)
    if mask is not None:
        assert mask.dtype == torch.bool and mask.shape == tokens.shape[:2]
        assert mask.any(dim=1).all()  # the random batch has no empty row


@pytest.mark.parametrize("name", _params())
def test_levels_shapes_and_last_is_the_embedding(name: str) -> None:
    enc, spec = _build(name)
    enc.eval()
    x = _input(spec)
    with torch.no_grad():
        levels = enc.forward_levels(x)
        emb = enc(x)
    assert [tuple(h.shape) for h in levels] == [(3, d) for d in enc.level_dims()]
    assert enc.level_dims()[-1] == OUT_DIM
    assert torch.allclose(levels[-1], emb, atol=1e-5), "the deepest level is the embedding"
    assert all(torch.isfinite(h).all() for h in levels)
    if "levels" in ENCODERS.get(name).tags:
        assert len(levels) > 1, "a 'levels' encoder exposes more than its last depth"


@pytest.mark.parametrize("name", _params())
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_missing_placeholder_rows_stay_finite(name: str, train: bool) -> None:
    """All-padding text, all-missing tabular rows and zero images/signals give finite outputs."""
    enc, spec = _build(name)
    enc.train(train)
    x = _input(spec, missing_rows=(0, 2))
    out = enc(x)
    tokens = enc.forward_tokens(x)
    assert torch.isfinite(out).all() and torch.isfinite(tokens).all()
    (out.sum() + tokens.sum()).backward()
    for n, p in enc.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"non-finite gradient in {n}"
    mask = enc.token_mask(x)
    if mask is not None:
        assert not mask[0].any() and not mask[2].any() and mask[1].any()


@pytest.mark.parametrize("name", _params("3d"))
def test_3d_volumes(name: str) -> None:
    enc, spec = _build(name, spatial_dims=3)
    enc.train()
    x = _input(spec, b=2)
    out = enc(x)
    assert out.shape == (2, OUT_DIM) and torch.isfinite(out).all()
    out.sum().backward()
    enc.eval()
    with torch.no_grad():
        tokens = enc.forward_tokens(x)
    assert tokens.shape[0] == 2 and tokens.shape[2] == OUT_DIM


def test_train_mode_keeps_frozen_parts_in_eval() -> None:
    for entry in ENCODERS.entries():
        if "pretrained" not in entry.tags or any(
            importlib.util.find_spec(m) is None for m in entry.meta.get("requires", ())
        ):
            continue
        enc, _ = _build(entry.name)
        enc.train()
        frozen_modules = [
            m for m in enc.modules() if any(not p.requires_grad for p in m.parameters(False))
        ]
        assert frozen_modules and not any(m.training for m in frozen_modules), entry.name


# --- conventions (meta-tests) ----------------------------------------------------------------


@pytest.mark.parametrize("name", [e.name for e in ENCODERS.entries()])
def test_registered_encoder_follows_conventions(name: str) -> None:
    entry = ENCODERS.get(name)
    cls = entry.cls
    assert issubclass(cls, Encoder)
    assert entry.summary, f"{name} has no one-line docstring summary"
    assert entry.meta.get("kind") in KINDS and cls.kind == entry.meta["kind"]
    if "optional" in entry.tags:
        assert entry.meta.get("requires"), "optional encoders list the modules they need"
    if "tokens" in entry.tags:
        assert cls.forward_tokens is not Encoder.forward_tokens
    if entry.meta["kind"] == "text" and "tokens" in entry.tags:
        assert cls.token_mask is not Encoder.token_mask
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.kind is p.KEYWORD_ONLY for p in params), "keyword-only arguments, no **kwargs"
    names = {p.name for p in params}
    assert {"out_dim", "dropout"} <= names
    required = {p.name for p in params if p.default is inspect.Parameter.empty}
    assert required <= SPEC_FIELDS, f"only spec fields may lack a default: {required - SPEC_FIELDS}"


def test_small_specs_cover_every_kind() -> None:
    for kind in KINDS:
        spec = small_spec(kind)
        assert batch_size_of(random_input(spec, 2)) == 2
