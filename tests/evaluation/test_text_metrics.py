"""Generation metrics: equal to pycocoevalcap's BLEU, ROUGE-L and CIDEr on random corpora, the
same on word ids and on words, and bootstrap weights that equal repeating cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from fusiondx.evaluation import text as tx
from fusiondx.evaluation.weights import weights_from_indices


def _corpus(
    rng: np.random.Generator, n: int = 30, vocab: int = 30
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    refs = [rng.integers(4, vocab, rng.integers(3, 15)) for _ in range(n)]
    hyps = []
    for r in refs:  # edited copies: real overlap at every n-gram order
        h = r.copy()
        h[rng.random(h.size) < 0.3] = rng.integers(4, vocab)
        hyps.append(
            np.concatenate([h, rng.integers(4, vocab, rng.integers(0, 3))])[: rng.integers(0, 18)]
        )
    return hyps, refs


def _coco(hyps: list[np.ndarray], refs: list[np.ndarray]) -> tuple[dict, dict]:
    """pycocoevalcap's input: {case: [reference]}, {case: [hypothesis]}, words split on spaces."""

    def words(s: np.ndarray) -> str:
        return " ".join(f"w{t}" for t in s)

    return {i: [words(r)] for i, r in enumerate(refs)}, {i: [words(h)] for i, h in enumerate(hyps)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_rouge_cider_equal_pycocoevalcap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hyps, refs = _corpus(rng, n=25 + 10 * seed, vocab=12 + 10 * seed)
    hyps[0] = np.array([], dtype=np.int64)  # an empty hypothesis scores 0, it is not dropped
    gts, res = _coco(hyps, refs)
    got = tx.text_metrics(hyps, refs)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(1, 5):
        assert got[f"bleu{n}"] == pytest.approx(bleu[n - 1], rel=1e-9, abs=1e-12), n
    rouge, rouge_per_case = Rouge().compute_score(gts, res)
    assert got["rouge_l"] == pytest.approx(rouge, rel=1e-9)
    assert np.allclose(tx.rouge_l(hyps, refs), rouge_per_case, rtol=1e-12, atol=0)
    cider, cider_per_case = Cider().compute_score(gts, res)
    assert got["cider"] == pytest.approx(cider, rel=1e-9)
    assert np.allclose(tx.cider(hyps, refs), cider_per_case, rtol=1e-12, atol=0)
    assert set(got) == set(tx.TEXT_METRICS)
    assert math.isnan(got["meteor"])  # word ids: nothing for METEOR to stem or look up


def test_cases_without_reference_drop_out_of_every_metric() -> None:
    rng = np.random.default_rng(4)
    hyps, refs = _corpus(rng, n=20)
    with_none = tx.text_metrics([*hyps, np.array([5, 6, 7])], [*refs, np.array([], dtype=np.int64)])
    assert with_none == pytest.approx(tx.text_metrics(hyps, refs), nan_ok=True)
    gts, res = _coco(hyps, refs)
    assert with_none["cider"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-9)
    nothing = tx.text_metrics([np.array([5])], [np.array([], dtype=np.int64)])
    assert all(math.isnan(v) for v in nothing.values())
    assert not tx.bleu_stats([np.array([5, 6])], [np.array([], dtype=np.int64)]).any()


def test_words_and_their_ids_score_the_same() -> None:
    rng = np.random.default_rng(5)
    hyps, refs = _corpus(rng, n=15)
    unk = 4  # some reference words are unknown to the vocabulary
    names = {i: f"word{i}" for i in range(30)} | {unk: "[UNK]"}
    as_words = (
        [" ".join(names[t] for t in s) for s in hyps],
        [" ".join(names[t] for t in s) for s in refs],
    )
    for f in (tx.bleu_stats, tx.rouge_l, tx.cider):  # (METEOR on words is test_meteor's)
        by_id, by_word = f(hyps, refs, unk=unk), f(*as_words, unk="[UNK]")
        assert np.allclose(by_id, by_word, rtol=1e-12, atol=0, equal_nan=True), f.__name__


def test_bleu_hand_computed_example_with_coco_guards() -> None:
    # hyp a b c d e, ref a b c x e f: matches 4, 2, 1, 0 of 5, 4, 3, 2 n-grams; c = 5 < r = 6.
    hyp, ref = np.array([1, 2, 3, 4, 5]), np.array([1, 2, 3, 9, 5, 6])
    st = tx.bleu_stats([hyp], [ref])
    assert st[0].tolist() == [4, 2, 1, 0, 5, 4, 3, 2, 5, 6]
    bp = math.exp(1 - 6 / 5)
    assert tx.corpus_bleu(st, max_n=1) == pytest.approx(bp * 0.8)
    assert tx.corpus_bleu(st, max_n=2) == pytest.approx(bp * math.sqrt(0.8 * 0.5))
    assert tx.corpus_bleu(st, max_n=3) == pytest.approx(bp * (0.8 * 0.5 / 3) ** (1 / 3))
    # No 4-gram matches: coco-caption's 1e-15 guard leaves a tiny BLEU-4, not 0.
    tiny = bp * (0.8 * 0.5 / 3 * 1e-15 / 2) ** (1 / 4)
    assert tx.corpus_bleu(st, max_n=4) == pytest.approx(tiny, rel=1e-6) and tiny < 1e-4
    same = tx.text_metrics([ref, hyp], [ref, hyp])
    for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"):
        assert same[k] == pytest.approx(1.0), k


def test_rouge_l_uses_beta_1_2() -> None:
    # LCS 2 of hyp length 2 and ref length 4: P = 1, R = 1/2 -> (1 + 1.44) P R / (R + 1.44 P)
    got = tx.rouge_l([np.array([1, 2])], [np.array([1, 3, 1, 2])])[0]
    assert got == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))


def test_rouge_l_equals_pycocoevalcap_on_long_reports() -> None:
    rng = np.random.default_rng(7)
    hyps = [rng.integers(0, 6, rng.integers(1, 90)) for _ in range(30)]
    refs = [rng.integers(0, 6, rng.integers(1, 90)) for _ in range(30)]
    gts, res = _coco(hyps, refs)
    assert np.allclose(
        tx.rouge_l(hyps, refs), Rouge().compute_score(gts, res)[1], rtol=1e-12, atol=0
    )


def test_strip_cuts_at_eos_and_drops_padding() -> None:
    ids = np.array([[2, 7, 8, 3, 9, 0], [2, 5, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = tx.strip(ids, pad=0, eos=3, bos=2)
    assert [o.tolist() for o in out] == [[7, 8], [5], []]
    assert tx.strip(np.array([7, 0, 8, 3, 9]), eos=3).tolist() == [7, 8]


def test_unknown_reference_words_match_nothing() -> None:
    unk = 1
    st = tx.bleu_stats([np.array([1, 5, 6])], [np.array([1, 5, 6])], unk=unk)
    assert st[0, :4].tolist() == [2, 1, 0, 0]
    assert tx.rouge_l([np.array([1, 1])], [np.array([1, 1])], unk=unk)[0] == 0.0
    assert tx.bleu_stats(["[UNK] a b"], ["[UNK] a b"], unk="[UNK]")[0, :4].tolist() == [2, 1, 0, 0]
    # without unk the same ids are ordinary words
    assert tx.bleu_stats([np.array([1, 5, 6])], [np.array([1, 5, 6])])[0, :4].tolist() == [
        3,
        2,
        1,
        0,
    ]


def test_text_weights_equal_repeated_cases() -> None:
    rng = np.random.default_rng(6)
    hyps, refs = _corpus(rng, n=12)
    idx = rng.integers(0, 12, (6, 12))
    w = weights_from_indices(idx, 12)
    scores = tx.text_scores(hyps, refs)
    boot = tx.text_metrics_from_scores(scores, w)
    for b in range(idx.shape[0]):
        again = tx.text_metrics([hyps[i] for i in idx[b]], [refs[i] for i in idx[b]])
        for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"):
            assert boot[k][b] == pytest.approx(again[k], rel=1e-12, abs=1e-15), (k, b)
        # CIDEr: per-case scores of the full set, averaged over the replicate's cases.
        assert boot["cider"][b] == pytest.approx(scores["cider"][idx[b]].mean(), rel=1e-12)
    assert np.isnan(boot["meteor"]).all()
