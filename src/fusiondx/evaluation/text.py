"""Report generation: BLEU-1..4, ROUGE-L, CIDEr and METEOR as coco-caption computes them.

The numbers are pycocoevalcap's (the coco-caption code most report-generation papers use), so
they can be put beside the literature:

- BLEU-n: coco-caption's corpus BLEU (``Bleu(4)``): clipped n-gram matches and hypothesis
  n-gram counts summed over the corpus, the "closest" reference length, brevity penalty
  ``exp(1 - r/c)`` when ``c < r``, and its 1e-15 / 1e-9 guards, which leave a tiny non-zero
  BLEU-4 where no 4-gram matches (sacrebleu would say 0).
- ROUGE-L: pycocoevalcap's ``Rouge``: per case the LCS F-measure with beta = 1.2, then the mean
  (its formula on a bit-parallel LCS, which gives its table's LCS far faster on long reports).
- CIDEr: pycocoevalcap's ``Cider`` (CIDEr-D: sigma 6, clipped counts, x10): per case, with
  document frequencies from the references of all cases with one, then the mean.
- METEOR: METEOR 1.5 through pycocoevalcap's jar (:mod:`.meteor`); needs words and Java.

Cases are token sequences: the task's word ids (what the head sees) or words (strings, or one
string of words split on whitespace, as the predictions tables hold them). Scores are computed on
these tokens as they are, without coco-caption's PTBTokenizer (a Java step that lower-cases and
drops punctuation): the task's tokenizer already decided what a word is. An unknown reference
word (``unk``) matches nothing, not even another unknown word. A case whose reference is empty
has no reference text and drops out of every number.

Case weights ``w`` give bootstrap replicates (see :mod:`.weights`). BLEU and METEOR of a
replicate come from its weighted summed statistics, so they equal the metric of the resampled
cases; ROUGE-L and CIDEr are weighted means of per-case scores. CIDEr's per-case scores depend on
the whole corpus (document frequencies), and they stay those of the full test set in every
replicate: a replicate is not CIDEr recomputed on resampled cases (where duplicated references
would change the document frequencies), which a bootstrap of the test-set score does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusiondx.evaluation.meteor import N_STATS, meteor_from_stats, meteor_stats, score_rows
from fusiondx.evaluation.weights import case_weights, per_replicate, weighted_mean

TEXT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider", "meteor")
Seqs = Sequence[Any] | np.ndarray
Tokens = Sequence[int | str]  # a case: word ids, or words
# coco-caption's guards in BleuScorer.compute_score: a zero count gives a tiny, not zero, ratio.
_TINY, _SMALL = 1e-15, 1e-9
_ROUGE_BETA = 1.2  # pycocoevalcap's Rouge: recall weighs more than precision


def strip(
    ids: Seqs, pad: int = 0, eos: int | None = None, bos: int | None = None
) -> np.ndarray | list[np.ndarray]:
    """Cut token ids at the first ``eos`` (excluded) and drop ``pad`` (and ``bos``) tokens.

    A 1-D array gives a 1-D array; a padded (N, L) array or a list of sequences gives a list.
    """
    if isinstance(ids, np.ndarray) and ids.ndim == 1:
        return _strip_one(ids, pad, eos, bos)
    return [_strip_one(np.asarray(r).reshape(-1), pad, eos, bos) for r in ids]


def _strip_one(s: np.ndarray, pad: int, eos: int | None, bos: int | None) -> np.ndarray:
    if eos is not None:
        hits = np.flatnonzero(s == eos)
        s = s[: hits[0]] if hits.size else s
    keep = s != pad
    if bos is not None:
        keep &= s != bos
    return s[keep].astype(np.int64)


def _tokens(case: Any) -> Tokens:
    if isinstance(case, str):
        return case.split()
    seq = np.asarray(case).reshape(-1).tolist()
    return [t if isinstance(t, str) else int(t) for t in seq]


def _pairs(hyps: Seqs, refs: Seqs, unk: int | str | None) -> list[tuple[Tokens, Tokens]]:
    hs, rs = [_tokens(h) for h in hyps], [_tokens(r) for r in refs]
    if len(hs) != len(rs):
        raise ValueError(f"{len(hs)} hypotheses but {len(rs)} references")
    if unk is None:
        return list(zip(hs, rs, strict=True))
    # An unknown reference word is some word we cannot name: each one becomes a fresh token that
    # matches nothing (ids: below every real, non-negative id; words: a made-up word, which also
    # stays one word through METEOR's punctuation splitting, as does an unknown hypothesis word).
    words = isinstance(unk, str)
    low = int(min([0, *(min(s) for s in hs + rs if s and not words)])) - 1
    out: list[tuple[Tokens, Tokens]] = []
    k = 0
    for h, r in zip(hs, rs, strict=True):
        r2: list[Any] = []
        for tok in r:
            if tok == unk:
                r2.append(f"fdxunk{k}" if words else low - k)
                k += 1
            else:
                r2.append(tok)
        out.append(([("fdxunk" if t == unk else t) for t in h] if words else h, r2))
    return out


def _text(tokens: Tokens) -> str:
    return " ".join(str(t) for t in tokens)


def bleu_stats(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> np.ndarray:
    """Per-case BLEU sufficient statistics (N, 10), as coco-caption's ``cook_test`` counts them.

    Columns: clipped n-gram matches for n = 1..4, hypothesis n-gram counts for n = 1..4,
    hypothesis length, reference length (coco-caption's "closest" length, with one reference
    that reference's length). A case with an empty reference (no reference text) is a row of
    zeros, so it adds nothing to the corpus sums.
    """
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    pairs = _pairs(hyps, refs, unk)
    out = np.zeros((len(pairs), 10))
    for i, (h, r) in enumerate(pairs):
        if not r:
            continue
        c = cook_test(_text(h), cook_refs([_text(r)]), eff="closest", n=4)
        out[i, :4], out[i, 4:8], out[i, 8] = c["correct"], c["guess"], c["testlen"]
        out[i, 9] = c["reflen"]
    return out


def corpus_bleu(
    stats: np.ndarray, w: np.ndarray | None = None, max_n: int = 4
) -> float | np.ndarray:
    """Corpus BLEU-``max_n`` from :func:`bleu_stats`, as coco-caption's ``Bleu`` computes it.

    ``(prod_k (match_k + 1e-15) / (count_k + 1e-9)) ** (1 / max_n)`` of the (weighted) summed
    counts, times ``exp(1 - r/c)`` when ``(c + 1e-15) / (r + 1e-9) < 1``. NaN when no case has
    a reference.
    """
    if not 1 <= max_n <= 4:
        raise ValueError("max_n must be 1..4")
    stats = np.asarray(stats, dtype=np.float64)
    tot = case_weights(w, stats.shape[0]) @ stats  # (B, 10): corpus counts per replicate
    prec = (tot[:, :max_n] + _TINY) / (tot[:, 4 : 4 + max_n] + _SMALL)
    bleu = np.prod(prec, axis=1) ** (1.0 / max_n)
    c, r = tot[:, 8], tot[:, 9]
    len_ratio = (c + _TINY) / (r + _SMALL)
    with np.errstate(divide="ignore", over="ignore"):
        bp = np.where(len_ratio < 1, np.exp(1 - 1 / len_ratio), 1.0)
    return per_replicate(np.where(r > 0, bleu * bp, np.nan), w)


def _lcs(a: Sequence[Any], b: Sequence[Any]) -> int:
    # Bit-parallel LCS (Allison & Dix 1986; Hyyro 2004): one big-int step per token of b instead
    # of pycocoevalcap's len(a) x len(b) table, so ROUGE-L on long reports stays fast.
    masks: dict[Any, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> np.ndarray:
    """Per-case ROUGE-L of pycocoevalcap's ``Rouge``: the LCS F-measure with beta = 1.2.

    An empty reference means the case has no reference text: NaN (left out of means). An empty
    hypothesis against a non-empty reference scores 0.
    """
    beta2 = _ROUGE_BETA**2
    pairs = _pairs(hyps, refs, unk)
    out = np.full(len(pairs), np.nan)
    for i, (h, r) in enumerate(pairs):
        if not r:
            continue
        m = _lcs(h, r) if h else 0
        p, rec = m / float(len(h) or 1), m / float(len(r))
        out[i] = ((1 + beta2) * p * rec) / float(rec + beta2 * p) if p != 0 and rec != 0 else 0.0
    return out


def cider(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> np.ndarray:
    """Per-case CIDEr-D of pycocoevalcap's ``Cider`` over the cases with a reference.

    Document frequencies come from the references of those cases, so a case's score depends on
    the corpus it is scored in. Empty reference: NaN.
    """
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    pairs = _pairs(hyps, refs, unk)
    out = np.full(len(pairs), np.nan)
    keep = [i for i, (_, r) in enumerate(pairs) if r]
    if keep:
        scorer = CiderScorer(n=4, sigma=6.0)
        for i in keep:
            scorer += (_text(pairs[i][0]), [_text(pairs[i][1])])
        out[keep] = scorer.compute_score()[1]
    return out


def meteor_stats_of(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> np.ndarray:
    """Per-case METEOR 1.5 statistics (N, 23) (see :mod:`.meteor`); NaN rows for a case without
    a reference, and everywhere when the cases are token ids rather than words or Java is absent."""
    pairs = _pairs(hyps, refs, unk)
    if any(not isinstance(t, str) for h, r in pairs for t in [*h, *r]):
        return np.full((len(pairs), N_STATS), np.nan)  # ids: no words to stem or look up
    return meteor_stats([(_text(h), _text(r)) if r else None for h, r in pairs])


def meteor(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> np.ndarray:
    """Per-case METEOR 1.5 (the jar's segment scores); NaN where :func:`meteor_stats_of` is."""
    stats = meteor_stats_of(hyps, refs, unk)
    return np.where(np.isfinite(stats).all(axis=1), score_rows(np.nan_to_num(stats)), np.nan)


def text_scores(hyps: Seqs, refs: Seqs, unk: int | str | None = None) -> dict[str, np.ndarray]:
    """Per-case data to store and bootstrap: ``bleu_stats`` (N, 10), ``rouge_l`` (N,),
    ``cider`` (N,) and ``meteor_stats`` (N, 23)."""
    return {
        "bleu_stats": bleu_stats(hyps, refs, unk),
        "rouge_l": rouge_l(hyps, refs, unk),
        "cider": cider(hyps, refs, unk),
        "meteor_stats": meteor_stats_of(hyps, refs, unk),
    }


def text_metrics_from_scores(
    scores: dict[str, np.ndarray], w: np.ndarray | None = None
) -> dict[str, Any]:
    """Corpus BLEU-1..4 and METEOR, mean ROUGE-L and CIDEr, from :func:`text_scores`."""
    out: dict[str, Any] = {f"bleu{n}": corpus_bleu(scores["bleu_stats"], w, n) for n in range(1, 5)}
    out["rouge_l"] = weighted_mean(scores["rouge_l"], w)
    out["cider"] = weighted_mean(scores["cider"], w)
    out["meteor"] = meteor_from_stats(scores["meteor_stats"], w)
    return out


def text_metrics(
    hyps: Seqs, refs: Seqs, w: np.ndarray | None = None, unk: int | str | None = None
) -> dict[str, Any]:
    """:data:`TEXT_METRICS` of token sequences (ids or words; see the module docstring)."""
    return text_metrics_from_scores(text_scores(hyps, refs, unk), w)
