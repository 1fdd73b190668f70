"""Report generation head: shapes, loss masking, learning a copy task, decoding, masking, metrics."""

from __future__ import annotations

import copy
import itertools
import math
import pickle
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from fusiondx.errors import ConfigError
from fusiondx.heads._base import HeadContext
from fusiondx.heads.generation import (
    GenerationHead,
    LSTMGenerationHead,
    TransformerGenerationHead,
    gnmt_length_penalty,
)
from fusiondx.registry import HEADS
from fusiondx.tasks import served_by

D, V, L = 32, 16, 8  # width, vocabulary, max_length (BOS + up to 6 words + EOS)
BOS, EOS, PAD = 2, 3, 0
MODS = ["a", "b"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # These models are tiny: one thread is faster than two and does not fight parallel jobs.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_ctx(
    tokens: dict[str, tuple[torch.Tensor, torch.Tensor | None]], mask: torch.Tensor
) -> HeadContext:
    return HeadContext(mask, sorted(tokens), lambda m: [], lambda m: tokens[m])


def head(**kw: object) -> GenerationHead:
    opts: dict = {
        "in_dim": D,
        "vocab_size": V,
        "max_length": L,
        "bos_id": BOS,
        "eos_id": EOS,
        "pad_id": PAD,
    }
    return GenerationHead(**{**opts, **kw})


def random_case(b: int = 6, seed: int = 0) -> tuple[torch.Tensor, HeadContext, torch.Tensor]:
    """Fused vectors, a context (modality b missing in some cases, padded tokens), targets."""
    g = torch.Generator().manual_seed(seed)
    fused = torch.randn(b, D, generator=g)
    real_b = torch.ones(b, 3, dtype=torch.bool)
    real_b[:, 2] = False
    tokens = {
        "a": (torch.randn(b, 4, D, generator=g), None),
        "b": (torch.randn(b, 3, D, generator=g), real_b),
    }
    mask = torch.ones(b, 2, dtype=torch.bool)
    mask[1::2, 1] = False
    return fused, make_ctx(tokens, mask), make_targets(b, g)


def make_targets(b: int, g: torch.Generator, length: int = L, vocab: int = V) -> torch.Tensor:
    """[BOS, words..., EOS, PAD...] with 2..length-2 words (never [UNK] or a special id)."""
    tgt = torch.full((b, length), PAD, dtype=torch.long)
    tgt[:, 0] = BOS
    for i in range(b):
        k = 2 + i % (length - 3)
        tgt[i, 1 : k + 1] = torch.randint(4, vocab, (k,), generator=g)
        tgt[i, k + 1] = EOS
    return tgt


def first_eos_mask(gen: torch.Tensor) -> torch.Tensor:
    """True at positions up to and including the first EOS."""
    e = (gen == EOS).long()
    return (e.cumsum(1) - e) == 0


# ---------------------------------------------------------------------------- shapes and contract


def test_registered_with_its_contract() -> None:
    entry = HEADS.get("generation")
    assert entry.cls is GenerationHead and served_by("generation") == ["text"]
    assert entry.summary.startswith("Report generation")
    assert GenerationHead.primary_metric == "bleu4" and GenerationHead.decodes
    assert GenerationHead.needs == frozenset({"tokens"})


def test_each_decoder_kind_is_its_own_class() -> None:
    assert GenerationHead.decoders() == ["lstm", "transformer"]
    for decoder, cls in (("transformer", TransformerGenerationHead), ("lstm", LSTMGenerationHead)):
        h = head(decoder=decoder)
        assert type(h) is cls and isinstance(h, GenerationHead) and h.decoder_kind == decoder
        assert h.get_config()["decoder"] == decoder
        for again in (copy.deepcopy(h), pickle.loads(pickle.dumps(h))):  # noqa: S301  (our own bytes)
            assert type(again) is cls and again.get_config() == h.get_config()
    assert type(head()) is TransformerGenerationHead  # the default decoder
    with pytest.raises(ConfigError, match="'lstm' decoder, not 'transformer'"):
        LSTMGenerationHead(in_dim=D, vocab_size=V, max_length=L, bos_id=BOS, eos_id=EOS)


def test_weights_keep_the_names_of_earlier_runs() -> None:
    # model.pt of a run trained before the decoders became classes still loads.
    shared = {"embed.weight", "out_bias"}
    t = set(head(decoder="transformer", layers=1).state_dict())
    assert (
        shared
        | {
            "pos",
            "decoder.layers.0.self_attn.in_proj_weight",
            "decoder.layers.0.multihead_attn.in_proj_weight",
            "decoder.layers.0.linear1.weight",
            "decoder.norm.weight",
        }
        <= t
    )
    lstm = set(head(decoder="lstm", layers=2, context="none").state_dict())
    assert lstm == shared | {
        "null_token",
        "init_state.weight",
        "init_state.bias",
        "att_key.weight",
        "att_query.weight",
        "att_query.bias",
        "att_v.weight",
        "out_state.weight",
        "out_state.bias",
    } | {f"cells.{i}.{w}" for i in (0, 1) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
@pytest.mark.parametrize("context", ["all", "fused", "none"])
def test_forward_and_predict_shapes(decoder: str, context: str) -> None:
    torch.manual_seed(0)
    h = head(decoder=decoder, context=context).eval()
    fused, ctx, tgt = random_case()
    assert h(fused, ctx, tgt).shape == (6, L - 1, V)
    assert h(fused, ctx, tgt[:, :5]).shape == (6, 4, V)  # a batch padded to less than max_length
    with torch.no_grad():
        for k in (1, 3):
            h.beam_size = k
            gen = h.predict(fused, ctx)
            assert gen.shape == (6, L - 1) and gen.dtype == torch.int64
            keep = first_eos_mask(gen)
            assert (gen[~keep] == PAD).all(), "everything after EOS is padding"
            assert not ((gen == BOS) | (gen == PAD))[keep].any(), "BOS and PAD are never generated"


def test_forward_needs_a_target_and_context_all_needs_the_context() -> None:
    fused, ctx, tgt = random_case()
    with pytest.raises(ValueError, match="predict"):
        head()(fused, ctx)
    with pytest.raises(ValueError, match="HeadContext"):
        head()(fused, None, tgt)
    with pytest.raises(ValueError, match="max_length"):
        head()(fused, ctx, torch.cat([tgt, tgt], 1))
    assert head(context="fused")(fused, None, tgt).shape == (6, L - 1, V)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"decoder": "gru"}, "decoder"),
        ({"context": "text"}, "context"),
        ({"heads": 5}, "divide"),
        ({"eos_id": BOS}, "differ"),
        ({"bos_id": V}, "bos_id"),
        ({"beam_size": 0}, "beam_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"unk_id": BOS}, "unk_id"),
        ({"max_length": 1}, "max_length"),
        ({"length_penalty": math.nan}, "length"),
    ],
)
def test_invalid_options_raise_a_config_error(bad: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        head(**bad)
    assert "Fix:" in str(err.value)


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
def test_config_rebuilds_the_head(decoder: str) -> None:
    h = head(
        decoder=decoder, layers=1, beam_size=3, length_penalty=0.6, context="fused", dropout=0.0
    )
    again = type(h)(**h.get_config())
    assert again.get_config() == h.get_config()
    again.load_state_dict(h.state_dict())  # same parameters, same shapes
    fused, ctx, tgt = random_case()
    assert torch.equal(again.eval().predict(fused, ctx), h.eval().predict(fused, ctx))


# ---------------------------------------------------------------------------- loss


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
def test_padding_and_empty_rows_take_no_part_in_the_loss(decoder: str) -> None:
    torch.manual_seed(0)
    h = head(decoder=decoder).eval()
    fused, ctx, tgt = random_case()
    empty = tgt.clone()
    empty[[1, 4]] = PAD  # cases without a reference report
    out = h(fused, ctx, empty).detach().requires_grad_()
    loss = h.loss(out, empty)
    loss.backward()
    assert out.grad is not None and out.grad[[1, 4]].abs().sum() == 0
    pad_after_eos = empty[:, 1:] == PAD
    assert out.grad[pad_after_eos].abs().sum() == 0
    # Same value as the loss of the other cases alone: they are simply not there.
    keep = [0, 2, 3, 5]
    sub = torch.tensor(keep)
    sub_ctx = make_ctx(
        {
            m: (ctx.tokens(m)[0][sub], None if ctx.tokens(m)[1] is None else ctx.tokens(m)[1][sub])
            for m in MODS
        },
        ctx.mask[sub],
    )
    assert loss.item() == pytest.approx(
        h.loss(h(fused[sub], sub_ctx, tgt[sub]), tgt[sub]).item(), rel=1e-5
    )
    # A batch with nothing to predict gives a zero loss that still back-propagates.
    nothing = torch.full_like(tgt, PAD)
    zero = h.loss(h(fused, ctx, nothing), nothing)
    assert zero.item() == 0.0 and zero.requires_grad
    zero.backward()


# ---------------------------------------------------------------------------- learning


def copy_task(where: str, n: int = 8) -> tuple[torch.Tensor, HeadContext, torch.Tensor]:
    """n cases, each with its own report; only the fused vector or modality a's tokens tell which."""
    g = torch.Generator().manual_seed(1)
    tgt = make_targets(n, g)
    info = torch.randn(n, D, generator=g)
    if where == "fused":
        fused, a = info, torch.randn(1, 3, D, generator=g).expand(n, -1, -1)
    else:  # the fused vector is the same for every case: the report must be read off the tokens
        fused, a = (
            torch.randn(1, D, generator=g).expand(n, -1),
            info.unsqueeze(1) + 0.1 * torch.randn(1, 3, D),
        )
    mask = torch.ones(n, 2, dtype=torch.bool)
    mask[::2, 1] = False
    return (
        fused,
        make_ctx({"a": (a, None), "b": (torch.randn(n, 2, D, generator=g), None)}, mask),
        tgt,
    )


def train(
    h: GenerationHead, fused: torch.Tensor, ctx: HeadContext, tgt: torch.Tensor, steps: int = 300
) -> tuple[float, float]:
    torch.manual_seed(0)
    opt = torch.optim.Adam(h.parameters(), lr=3e-3)
    h.train()
    first = last = math.nan
    for i in range(steps):
        opt.zero_grad()
        loss = h.loss(h(fused, ctx, tgt), tgt)
        loss.backward()
        opt.step()
        first = loss.item() if i == 0 else first
        last = loss.item()
    return first, last


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
@pytest.mark.parametrize("context,where", [("all", "tokens"), ("fused", "fused")])
def test_learns_to_write_the_report_the_context_determines(
    decoder: str, context: str, where: str
) -> None:
    torch.manual_seed(0)
    h = head(
        decoder=decoder, context=context, dropout=0.0, layers=2 if decoder == "transformer" else 1
    )
    fused, ctx, tgt = copy_task(where)
    first, last = train(h, fused, ctx, tgt)
    assert last < first / 20
    gen = h.eval().predict(fused, ctx)
    assert torch.equal(gen, tgt[:, 1:])
    m = h.evaluate(gen, tgt)
    assert m["bleu4"] == pytest.approx(1.0) and m["rouge_l"] == pytest.approx(1.0)


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
@pytest.mark.parametrize("context,where", [("none", "fused"), ("fused", "tokens")])
def test_cannot_write_it_without_the_context_that_determines_it(
    decoder: str, context: str, where: str
) -> None:
    # "none" sees no case information; "fused" does not see the tokens where the answer is.
    torch.manual_seed(0)
    h = head(decoder=decoder, context=context, dropout=0.0, layers=1)
    fused, ctx, tgt = copy_task(where)
    _, last = train(h, fused, ctx, tgt, steps=150)
    assert last > 0.1  # the best it can do is the mixture of the 8 reports
    gen = h.eval().predict(fused, ctx)
    assert (gen != tgt[:, 1:]).any(1).sum() >= 4
    assert h.evaluate(gen, tgt)["bleu4"] < 0.8


# ---------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
def test_greedy_follows_the_teacher_forced_argmax(decoder: str) -> None:
    # The incremental decoder (key-value cache for the transformer) must agree with forward().
    torch.manual_seed(0)
    h = head(decoder=decoder).eval()
    fused, ctx, _ = random_case(16)
    gen = h.greedy(fused, ctx)
    bos = torch.full((16, 1), BOS)
    with torch.no_grad():
        logits = h(fused, ctx, torch.cat([bos, gen], 1))
    logits[..., [BOS, PAD]] = -math.inf
    keep = first_eos_mask(gen)
    assert torch.equal(logits.argmax(-1)[keep], gen[keep])


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_search_finds_at_least_the_greedy_score(decoder: str, alpha: float) -> None:
    torch.manual_seed(3)
    h = head(
        decoder=decoder, length_penalty=alpha, vocab_size=8
    ).eval()  # small vocabulary: EOS comes early
    fused, ctx, _ = random_case(24)
    greedy = h.greedy(fused, ctx)
    assert torch.equal(h.beam_search(fused, ctx, 1), greedy)
    beam = h.beam_search(fused, ctx, 4)
    s_beam, s_greedy = h.sequence_score(fused, ctx, beam), h.sequence_score(fused, ctx, greedy)
    assert (s_beam >= s_greedy - 1e-5).all()
    assert (s_beam > s_greedy + 1e-4).any(), "the beam should beat greedy somewhere"
    h.beam_size = 4
    assert torch.equal(h.predict(fused, ctx), beam)


def test_beam_score_uses_the_gnmt_length_penalty() -> None:
    torch.manual_seed(0)
    h = head(length_penalty=0.7).eval()
    fused, ctx, _ = random_case(4)
    gen = h.beam_search(fused, ctx, 3)
    with torch.no_grad():
        logp = h(fused, ctx, torch.cat([torch.full((4, 1), BOS), gen], 1))
    logp[..., [BOS, PAD]] = -math.inf
    tok = logp.log_softmax(-1).gather(-1, gen.unsqueeze(-1)).squeeze(-1)
    keep = first_eos_mask(gen)
    expected = (
        torch.where(keep, tok, 0.0).sum(1) / ((5 + keep.sum(1)) / 6.0) ** 0.7
    )  # PAD after EOS: -inf
    assert torch.allclose(h.sequence_score(fused, ctx, gen), expected, atol=1e-5)
    assert gnmt_length_penalty(torch.tensor(1), 0.7).item() == pytest.approx(1.0)


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wide_enough_to_keep_everything_finds_the_best_report(
    decoder: str, alpha: float
) -> None:
    # 4 writable tokens (1, 3=EOS, 4, 5), at most 5 of them: 364 possible reports. A beam of 128
    # never drops one that could still win, so it must return the exact optimum of the ranking
    # score (finished beams with their own length), checked against every report.
    torch.manual_seed(0)
    h = head(decoder=decoder, vocab_size=6, max_length=6, length_penalty=alpha, dropout=0.0)
    fused, ctx, _ = random_case(6)
    tgt = make_targets(6, torch.Generator().manual_seed(0), length=6, vocab=6)
    # A few steps: optima of varied lengths, greedy not yet always right.
    train(h, fused, ctx, tgt, steps=2 if decoder == "transformer" else 15)
    h.eval()
    words = [1, 4, 5]
    every = [list(p) + [EOS] for n in range(5) for p in itertools.product(words, repeat=n)]
    every += [list(p) for p in itertools.product(words, repeat=5)]
    every_t = torch.tensor([s + [PAD] * (5 - len(s)) for s in every])
    assert len(every) == 364
    best = h.beam_search(fused, ctx, 128)
    for i in range(6):
        one = make_ctx(
            {
                m: tuple(
                    None if x is None else x[i : i + 1].expand(364, *x.shape[1:])
                    for x in ctx.tokens(m)
                )
                for m in MODS
            },
            ctx.mask[i : i + 1].expand(364, -1),
        )
        scores = h.sequence_score(fused[i : i + 1].expand(364, -1), one, every_t)
        assert torch.equal(best[i], every_t[scores.argmax()]), f"case {i}"
    assert len({int(n) for n in first_eos_mask(best).sum(1)}) > 1, "optima of several lengths"
    assert not torch.equal(best, h.greedy(fused, ctx)), "greedy misses the optimum somewhere"


# ---------------------------------------------------------------------------- missing modalities


@pytest.mark.parametrize("decoder", ["transformer", "lstm"])
def test_absent_modalities_and_padding_tokens_are_ignored(decoder: str) -> None:
    torch.manual_seed(0)
    h = head(decoder=decoder, beam_size=3).eval()
    fused, ctx, tgt = random_case()
    toks = {m: ctx.tokens(m) for m in MODS}
    absent = ~ctx.mask[:, 1]  # modality b is missing in cases 1, 3, 5
    b_tok, b_real = toks["b"]
    changed = b_tok.clone()
    changed[absent] = 100 * torch.randn_like(changed[absent])
    changed[:, 2] = -50.0  # the padding token of every case
    other = make_ctx({"a": toks["a"], "b": (changed, b_real)}, ctx.mask)
    with torch.no_grad():
        assert torch.allclose(h(fused, ctx, tgt), h(fused, other, tgt), atol=1e-5)
        assert torch.equal(h.predict(fused, ctx), h.predict(fused, other))
        # ...whereas the tokens of a present modality do change the output.
        present = b_tok.clone()
        present[~absent, :2] += 3.0
        moved = h(fused, make_ctx({"a": toks["a"], "b": (present, b_real)}, ctx.mask), tgt)
        assert not torch.allclose(moved[~absent], h(fused, ctx, tgt)[~absent], atol=1e-3)


# ---------------------------------------------------------------------------- metrics


def test_evaluate_ignores_empty_references_and_cuts_at_eos() -> None:
    h = head()
    g = torch.Generator().manual_seed(0)
    tgt = make_targets(5, g)
    perfect = tgt[:, 1:]
    junk = perfect.clone()
    junk[perfect == PAD] = 7  # whatever comes after EOS is not part of the report
    m = h.evaluate(junk, tgt)
    assert set(m) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider", "meteor"}
    assert all(m[k] == pytest.approx(1.0) for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"))
    assert m["cider"] > 1.0  # CIDEr-D is x10: identical reports score well above 1
    assert np.isnan(m["meteor"])  # METEOR needs words; the head holds token ids
    # A case without a reference changes nothing, whatever was written for it.
    tgt2 = torch.cat([tgt, torch.full((1, L), PAD)])
    pred2 = torch.cat([junk, torch.randint(4, V, (1, L - 1))])
    assert h.evaluate(pred2, tgt2) == pytest.approx(m, nan_ok=True)
    # Wrong words lower the scores; no reference at all gives NaN, not a number.
    wrong = junk.clone()
    wrong[:, 0] = (wrong[:, 0] + 1 - 4) % (V - 4) + 4
    assert h.evaluate(wrong, tgt)["bleu4"] < 1.0
    assert all(np.isnan(v) for v in h.evaluate(pred2[-1:], tgt2[-1:]).values())


def test_unknown_reference_words_match_nothing() -> None:
    tgt = torch.tensor([[BOS, 5, 1, 6, 7, EOS, PAD, PAD]])  # 1 is [UNK]
    assert head().evaluate(tgt[:, 1:], tgt)["bleu1"] == pytest.approx(0.75)
    assert head(unk_id=None).evaluate(tgt[:, 1:], tgt)["bleu1"] == pytest.approx(1.0)
