"""Metrics of box, mask, text, survival and regression tasks, built for cheap bootstrap intervals.

Design: every metric is computed from per-case data (a box IoU, a Dice score, n-gram counts, a
pair of survival times...) and an optional matrix of case weights ``w`` of shape (B, N):
``w[b, i]`` is how many times case ``i`` appears in bootstrap replicate ``b`` (integer counts
stored as float; :func:`weights_from_indices` turns resampled indices into such a matrix). A
replicate is then a weighted sum over the same per-case arrays, so B replicates cost one matrix
product instead of B recomputations from raw predictions, and nothing of size B x N x (case data)
is ever built. With ``w=None`` a metric is computed once on all cases (as ``w = ones((1, N))``)
and returned as a plain float; with ``w`` given it is an array (B,). Weighting a case by an
integer ``k`` gives exactly the metric of the set where that case is repeated ``k`` times, also
for the non-additive metrics (corpus BLEU from summed n-gram counts, Harrell's C from weighted
pairs, R^2 from weighted moments).

A metric that is undefined on the given cases (no case with a lesion, no comparable pair, a
constant target) is NaN, never a misleading number. Per-case values are NaN where a case has no
answer (no true box, an ignored mask, no reference text); such cases drop out of every mean.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

# Cap on the elements of the temporaries built per block (pair-matrix rows, mask chunks), so that
# memory stays bounded (~ tens of MB) whatever N and B are.
_BLOCK_ELEMENTS = 4_000_000

METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "box": ("iou", "detection_rate", "center_error"),
    "mask": ("dice", "iou", "dice_lesion", "iou_lesion"),
    "text": ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "meteor"),
    "survival": ("c_index",),
    "regression": ("mae", "rmse", "r2"),
}
PRIMARY: dict[str, str] = {"box": "iou", "mask": "dice_lesion", "text": "bleu4",
                           "survival": "c_index", "regression": "r2"}
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "rmse", "center_error"})


# --------------------------------------------------------------------------- weights

def weights_from_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """Bootstrap indices (B, N') into cases 0..n-1 -> case counts (B, n) float64."""
    idx = np.asarray(idx)
    if idx.ndim != 2:
        raise ValueError(f"indices must be (B, N), got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n})")
    b = idx.shape[0]
    # One bincount over the whole matrix: row r's indices are shifted into their own range r*n.
    flat = (idx.astype(np.int64) + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    if w is None:
        return np.ones((1, n))
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must be (B, {n}), got shape {w.shape}")
    return w


def _out(x: np.ndarray, w: np.ndarray | None) -> float | np.ndarray:
    return float(x[0]) if w is None else x


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_mean(values: np.ndarray, w: np.ndarray | None = None) -> float | np.ndarray:
    """Mean of per-case values (N,) over defined (non-NaN) cases, weighted; NaN if none."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    ww = _weights(w, v.size)
    defined = np.isfinite(v)
    return _out(_ratio(ww @ np.where(defined, v, 0.0), ww @ defined.astype(np.float64)), w)


# --------------------------------------------------------------------------- boxes

def box_iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-case IoU of aligned xyxy boxes (N, 4), (N, 4) -> (N,).

    NaN where the true row is NaN (no lesion: nothing to score). A NaN predicted row against a
    true box scores 0 (the model found nothing). Degenerate predicted boxes (x1 < x0) have area 0.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    iw = np.clip(np.minimum(p[:, 2], t[:, 2]) - np.maximum(p[:, 0], t[:, 0]), 0, None)
    ih = np.clip(np.minimum(p[:, 3], t[:, 3]) - np.maximum(p[:, 1], t[:, 1]), 0, None)
    inter = iw * ih
    area_p = np.clip(p[:, 2] - p[:, 0], 0, None) * np.clip(p[:, 3] - p[:, 1], 0, None)
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_p + area_t - inter)
    has_true = np.isfinite(t).all(axis=1)
    iou = np.where(np.isfinite(p).all(axis=1), iou, 0.0)
    return np.where(has_true, iou, np.nan)


def box_metrics(pred: np.ndarray, true: np.ndarray, w: np.ndarray | None = None,
                iou_threshold: float = 0.5) -> dict[str, Any]:
    """Mean IoU, detection rate (IoU >= threshold) and centre error over cases with a true box.

    ``center_error`` is the Euclidean distance between box centres in units of the image side
    (boxes are normalised); it skips cases whose predicted row is NaN (no centre to measure).
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    iou = box_iou(p, t)
    hit = np.where(np.isnan(iou), np.nan, (iou >= iou_threshold).astype(np.float64))
    centre = np.hypot((p[:, 0] + p[:, 2] - t[:, 0] - t[:, 2]) / 2,
                      (p[:, 1] + p[:, 3] - t[:, 1] - t[:, 3]) / 2)
    return {"iou": weighted_mean(iou, w), "detection_rate": weighted_mean(hit, w),
            "center_error": weighted_mean(centre, w)}


# --------------------------------------------------------------------------- masks

def mask_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per-case Dice and IoU of binary masks: pred (N, *S) bool, true (N, *S) uint8 0/1.

    A true mask that is 255 in every pixel marks a case to ignore (NaN scores, NaN pixel counts).
    Both masks empty: Dice = IoU = 1 (nothing to find, nothing found); true empty but pred not: 0.
    Returns ``dice``, ``iou``, ``true_pixels`` and ``pred_pixels`` (N,) float arrays, to be stored
    per case and averaged by :func:`mask_metrics`.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ")
    n = pred.shape[0] if pred.ndim else 0
    p, t = pred.reshape(n, -1), true.reshape(n, -1)
    inter, ps, ts = (np.zeros(n) for _ in range(3))
    ignored = np.zeros(n, dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // max(1, p.shape[1]))  # cases per chunk: bounded temporaries
    for s in range(0, n, step):
        pc = p[s:s + step] != 0
        tc = t[s:s + step]
        void = tc == 255
        ign = void.all(axis=1)
        if (void.any(axis=1) & ~ign).any():
            raise ValueError("255 must fill a whole true mask (an ignored case), not part of one")
        lesion = tc == 1
        if (~(lesion | void) & (tc != 0)).any():
            raise ValueError("true masks must hold 0/1 pixels (or 255 everywhere to ignore)")
        ignored[s:s + step] = ign
        inter[s:s + step] = np.count_nonzero(pc & lesion, axis=1)
        ps[s:s + step] = np.count_nonzero(pc, axis=1)
        ts[s:s + step] = np.count_nonzero(lesion, axis=1)
    union = ps + ts - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(ps + ts > 0, 2 * inter / (ps + ts), 1.0)
        iou = np.where(union > 0, inter / union, 1.0)
    nan = np.full(n, np.nan)
    return {"dice": np.where(ignored, nan, dice), "iou": np.where(ignored, nan, iou),
            "true_pixels": np.where(ignored, nan, ts), "pred_pixels": np.where(ignored, nan, ps)}


def mask_metrics(scores: dict[str, np.ndarray], w: np.ndarray | None = None) -> dict[str, Any]:
    """Dice/IoU averaged over non-ignored cases, and ``*_lesion`` over cases with a lesion.

    ``dice_lesion`` (cases whose true mask has a lesion pixel) is the usual lesion-segmentation
    number; ``dice`` also credits correct empty predictions on lesion-free cases.
    """
    lesion = np.nan_to_num(np.asarray(scores["true_pixels"], dtype=np.float64)) > 0
    dice = np.asarray(scores["dice"], dtype=np.float64)
    iou = np.asarray(scores["iou"], dtype=np.float64)
    return {"dice": weighted_mean(dice, w), "iou": weighted_mean(iou, w),
            "dice_lesion": weighted_mean(np.where(lesion, dice, np.nan), w),
            "iou_lesion": weighted_mean(np.where(lesion, iou, np.nan), w)}


# --------------------------------------------------------------------------- text

Seqs = Sequence[np.ndarray] | np.ndarray


def strip(ids: Seqs, pad: int = 0, eos: int | None = None,
          bos: int | None = None) -> np.ndarray | list[np.ndarray]:
    """Cut token ids at the first ``eos`` (excluded) and drop ``pad`` (and ``bos``) tokens.

    A 1-D array gives a 1-D array; a padded (N, L) array or a list of sequences gives a list.
    """
    if isinstance(ids, np.ndarray) and ids.ndim == 1:
        s = ids
        if eos is not None:
            hits = np.flatnonzero(s == eos)
            s = s[:hits[0]] if hits.size else s
        keep = s != pad
        if bos is not None:
            keep &= s != bos
        return s[keep].astype(np.int64)
    return [strip(np.asarray(r).reshape(-1), pad, eos, bos) for r in ids]


def _seqs(x: Seqs) -> list[list[int]]:
    return [np.asarray(s).reshape(-1).astype(np.int64).tolist() for s in x]


def _pairs(hyps: Seqs, refs: Seqs, unk: int | None) -> list[tuple[list[int], list[int]]]:
    hs, rs = _seqs(hyps), _seqs(refs)
    if len(hs) != len(rs):
        raise ValueError(f"{len(hs)} hypotheses but {len(rs)} references")
    if unk is None:
        return list(zip(hs, rs, strict=True))
    # An unknown reference word is some word we cannot name: it must match nothing, not even
    # another unknown word, so each one becomes a fresh id below every real (non-negative) id.
    low = min([0, *(min(s) for s in hs + rs if s)]) - 1
    out, k = [], 0
    for h, r in zip(hs, rs, strict=True):
        r2 = []
        for tok in r:
            if tok == unk:
                r2.append(low - k)
                k += 1
            else:
                r2.append(tok)
        out.append((h, r2))
    return out


def _ngrams(s: list[int], n: int) -> Counter:
    return Counter(zip(*(s[i:] for i in range(n)), strict=False))


def bleu_stats(hyps: Seqs, refs: Seqs, unk: int | None = None) -> np.ndarray:
    """Per-case BLEU sufficient statistics (N, 10), one reference per case.

    Columns: clipped n-gram matches for n = 1..4, hypothesis n-gram counts for n = 1..4,
    hypothesis length, reference length. A case with an empty reference (no reference text) is
    a row of zeros, so it adds nothing to the corpus sums.
    """
    pairs = _pairs(hyps, refs, unk)
    out = np.zeros((len(pairs), 10))
    for i, (h, r) in enumerate(pairs):
        if not r:
            continue
        for n in range(1, 5):
            hc = _ngrams(h, n)
            rc = _ngrams(r, n)
            out[i, n - 1] = sum(min(c, rc[g]) for g, c in hc.items())
            out[i, 3 + n] = max(0, len(h) - n + 1)
        out[i, 8], out[i, 9] = len(h), len(r)
    return out


def corpus_bleu(stats: np.ndarray, w: np.ndarray | None = None,
                max_n: int = 4) -> float | np.ndarray:
    """Corpus BLEU-``max_n`` from :func:`bleu_stats`, as sacrebleu/torchmetrics without smoothing.

    Uniform weights 1/max_n, geometric mean of the modified precisions of the (weighted) summed
    counts, brevity penalty exp(1 - r/c) when c <= r; any zero precision gives 0.
    """
    if not 1 <= max_n <= 4:
        raise ValueError("max_n must be 1..4")
    stats = np.asarray(stats, dtype=np.float64)
    tot = _weights(w, stats.shape[0]) @ stats  # (B, 10): corpus counts per replicate
    match, count = tot[:, :max_n], tot[:, 4:4 + max_n]
    c, r = tot[:, 8], tot[:, 9]
    ok = (match > 0).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(ok[:, None], np.log(np.where(ok[:, None], match / count, 1.0)), 0.0)
        bp = np.where(c > r, 1.0, np.exp(1 - r / np.where(c > 0, c, 1.0)))
    return _out(np.where(ok, bp * np.exp(logp.mean(axis=1)), 0.0), w)


def _lcs(a: list[int], b: list[int]) -> int:
    # Bit-parallel LCS (Allison & Dix 1986; Hyyro 2004): one big-int step per token of b instead
    # of a len(a) x len(b) table, so ROUGE-L on long reports stays fast in pure Python.
    masks: dict[int, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l(hyps: Seqs, refs: Seqs, unk: int | None = None) -> np.ndarray:
    """Per-case ROUGE-L F1 (LCS-based, beta = 1, as rouge-score/torchmetrics ``rougeL_fmeasure``).

    An empty reference means the case has no reference text: NaN (left out of means). An empty
    hypothesis against a non-empty reference scores 0.
    """
    pairs = _pairs(hyps, refs, unk)
    out = np.full(len(pairs), np.nan)
    for i, (h, r) in enumerate(pairs):
        if not r:
            continue
        m = _lcs(h, r) if h else 0
        out[i] = 0.0 if m == 0 else 2 * m / (len(h) + len(r))  # F1 of P = m/|h|, R = m/|r|
    return out


def _align(h: list[int], r: list[int]) -> list[tuple[int, int]]:
    """Exact-match alignment with as many matches as possible and few chunks (greedy tiling).

    The maximal common runs (diagonals of the token-equality matrix) are taken longest first
    (ties: earliest in the hypothesis, then the reference); a run that overlaps tokens already
    aligned is split into its free parts and queued again. Every word type ends with
    min(count in h, count in r) matches, the METEOR maximum; the number of chunks is small but
    not guaranteed minimal (that search is combinatorial).
    """
    pos: dict[int, list[int]] = {}
    for j, tok in enumerate(r):
        pos.setdefault(tok, []).append(j)
    heap = []
    for i, tok in enumerate(h):
        for j in pos.get(tok, ()):
            if i and j and h[i - 1] == r[j - 1]:
                continue  # not the start of a maximal run
            k = 1
            while i + k < len(h) and j + k < len(r) and h[i + k] == r[j + k]:
                k += 1
            heap.append((-k, i, j))
    heapq.heapify(heap)
    used_h, used_r = [False] * len(h), [False] * len(r)
    pairs = []
    while heap:
        k, i, j = heapq.heappop(heap)
        k = -k
        free = [not used_h[i + d] and not used_r[j + d] for d in range(k)]
        if all(free):
            for d in range(k):
                used_h[i + d] = used_r[j + d] = True
                pairs.append((i + d, j + d))
            continue
        d = 0
        while d < k:  # re-queue the still-free sub-runs
            if free[d]:
                e = d
                while e < k and free[e]:
                    e += 1
                heapq.heappush(heap, (-(e - d), i + d, j + d))
                d = e
            else:
                d += 1
    return sorted(pairs)


def meteor(hyps: Seqs, refs: Seqs, unk: int | None = None, alpha: float = 0.9,
           beta: float = 3.0, gamma: float = 0.5) -> np.ndarray:
    """Per-case METEOR (Banerjee & Lavie, 2005) with exact unigram matching only.

    Fmean = P R / (alpha P + (1 - alpha) R) (= 10PR / (R + 9P) at alpha = 0.9), penalty
    gamma (chunks / matches)^beta, score Fmean (1 - penalty). The stemming and WordNet-synonym
    matching stages are not applied: they need WordNet data, which cannot be fetched offline, and
    word ids of a closed vocabulary carry no morphology anyway. The alignment is the greedy tiling
    of :func:`_align`. Empty reference: NaN (no reference text); empty hypothesis: 0.
    """
    pairs = _pairs(hyps, refs, unk)
    out = np.full(len(pairs), np.nan)
    for i, (h, r) in enumerate(pairs):
        if not r:
            continue
        al = _align(h, r)
        m = len(al)
        if m == 0:
            out[i] = 0.0
            continue
        # A chunk ends wherever the next match is not adjacent in both sequences.
        chunks = 1 + sum(1 for (a, b), (c, d) in zip(al, al[1:], strict=False)
                         if c != a + 1 or d != b + 1)
        p, rec = m / len(h), m / len(r)
        fmean = p * rec / (alpha * p + (1 - alpha) * rec)
        out[i] = fmean * (1 - gamma * (chunks / m) ** beta)
    return out


def text_scores(hyps: Seqs, refs: Seqs, unk: int | None = None) -> dict[str, np.ndarray]:
    """Per-case data to store and bootstrap: ``bleu_stats`` (N, 10), ``rouge_l``, ``meteor``."""
    return {"bleu_stats": bleu_stats(hyps, refs, unk), "rouge_l": rouge_l(hyps, refs, unk),
            "meteor": meteor(hyps, refs, unk)}


def text_metrics_from_scores(scores: dict[str, np.ndarray],
                             w: np.ndarray | None = None) -> dict[str, Any]:
    """Corpus BLEU-1..4 and mean ROUGE-L / METEOR from :func:`text_scores`."""
    out: dict[str, Any] = {f"bleu{n}": corpus_bleu(scores["bleu_stats"], w, n) for n in range(1, 5)}
    out["rouge_l"] = weighted_mean(scores["rouge_l"], w)
    out["meteor"] = weighted_mean(scores["meteor"], w)
    return out


def text_metrics(hyps: Seqs, refs: Seqs, w: np.ndarray | None = None,
                 unk: int | None = None) -> dict[str, Any]:
    """BLEU-1..4 (corpus), ROUGE-L and METEOR (means of per-case scores) of stripped sequences."""
    return text_metrics_from_scores(text_scores(hyps, refs, unk), w)


# --------------------------------------------------------------------------- survival

def concordance_index(risk: np.ndarray, time: np.ndarray, event: np.ndarray,
                      w: np.ndarray | None = None) -> float | np.ndarray:
    """Harrell's C: the share of comparable pairs whose higher-risk case has the event first.

    A pair (i, j) is comparable when i had the event and time_i < time_j, or the times tie and
    only i had the event (the event counts as earlier: lifelines' and scikit-survival's
    convention); tied times with two events are not comparable. Tied risks count 1/2. With
    weights a pair counts w_i * w_j, which equals repeating cases (a case's copies are tied
    pairs, never comparable). Cases with a non-finite risk, time or event are left out. NaN when
    no pair is comparable.
    """
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event, dtype=np.float64).reshape(-1)
    if not risk.size == time.size == event.size:
        raise ValueError("risk, time and event must have the same length")
    ww = _weights(w, risk.size)
    ok = np.isfinite(risk) & np.isfinite(time) & np.isfinite(event)
    risk, time, ev, ww = risk[ok], time[ok], event[ok] != 0, ww[:, ok]
    n, b = risk.size, ww.shape[0]
    num, den = np.zeros(b), np.zeros(b)
    rows = np.flatnonzero(ev)  # only event cases start a comparable pair
    # The pair matrices are built a block of rows at a time and contracted with all B weight
    # rows at once: sum_ij w_bi M_ij w_bj = sum_i w_bi (M w_b^T)_i, one matmul per block.
    step = max(1, _BLOCK_ELEMENTS // max(n, b, 1))
    wt = ww.T
    for s in range(0, rows.size, step):
        i = rows[s:s + step]
        ti, tj = time[i, None], time[None, :]
        comp = (ti < tj) | ((ti == tj) & ~ev[None, :])
        score = comp * ((risk[i, None] > risk[None, :]) + 0.5 * (risk[i, None] == risk[None, :]))
        both = np.concatenate([score, comp.astype(np.float64)]) @ wt  # (2 * block, B)
        wi = wt[i]
        num += (wi * both[:i.size]).sum(axis=0)
        den += (wi * both[i.size:]).sum(axis=0)
    return _out(_ratio(num, den), w)


def survival_metrics(risk: np.ndarray, time: np.ndarray, event: np.ndarray,
                     w: np.ndarray | None = None) -> dict[str, Any]:
    """``c_index``: Harrell's concordance of risk scores (higher = earlier event)."""
    return {"c_index": concordance_index(risk, time, event, w)}


# --------------------------------------------------------------------------- regression

def regression_metrics(pred: np.ndarray, true: np.ndarray,
                       w: np.ndarray | None = None) -> dict[str, Any]:
    """Weighted MAE, RMSE and R^2 over cases with a target (NaN true = missing, left out).

    R^2 = 1 - SS_res / SS_tot around the weighted mean of the target; NaN when the target is
    constant on the (weighted) cases, where scikit-learn would force 0 or 1.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    ww = _weights(w, t.size)
    ok = np.isfinite(p) & np.isfinite(t)
    err = np.where(ok, p - t, 0.0)
    # Centre the target first: SS_tot from weighted moments then loses no precision to a large
    # common offset.
    tc = np.where(ok, t - (t[ok].mean() if ok.any() else 0.0), 0.0)
    sw = ww @ ok.astype(np.float64)
    s1, s2 = ww @ tc, ww @ (tc * tc)
    mse = _ratio(ww @ (err * err), sw)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = s2 - s1 * _ratio(s1, sw)
        ss_res = mse * sw
        r2 = np.where(ss_tot > 1e-12 * s2, 1 - ss_res / ss_tot, np.nan)
    return {"mae": _out(_ratio(ww @ np.abs(err), sw), w), "rmse": _out(np.sqrt(mse), w),
            "r2": _out(r2, w)}


METRIC_FUNCTIONS: dict[str, Any] = {
    "box": box_metrics,  # (pred boxes, true boxes, w)
    "mask": mask_metrics,  # (mask_scores(pred, true), w)
    "text": text_metrics,  # (hyps, refs, w, unk)
    "survival": survival_metrics,  # (risk, time, event, w)
    "regression": regression_metrics,  # (pred, true, w)
}
