"""Box, mask, text, survival and regression metrics: known answers, reference libraries, and
bootstrap weights that must equal recomputing the metric on resampled cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from fusiondx.evaluation import task_metrics as tm


def _close(a, b, tol: float = 1e-9) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol, rtol=tol, equal_nan=True))


def _boot(rng: np.random.Generator, n: int, b: int = 6) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.integers(0, n, (b, n))
    return idx, tm.weights_from_indices(idx, n)


# --------------------------------------------------------------------------- weights

def test_weights_from_indices_counts_each_row() -> None:
    idx = np.array([[0, 0, 2], [1, 2, 2], [3, 3, 3]])
    w = tm.weights_from_indices(idx, 4)
    assert w.dtype == np.float64
    assert w.tolist() == [[2, 0, 1, 0], [0, 1, 2, 0], [0, 0, 0, 3]]
    with pytest.raises(ValueError):
        tm.weights_from_indices(idx, 3)


def test_weighted_mean_skips_undefined_cases() -> None:
    v = np.array([1.0, np.nan, 3.0, 5.0])
    assert tm.weighted_mean(v) == pytest.approx(3.0)
    w = np.array([[1, 5, 1, 0], [0, 1, 0, 0], [2, 0, 0, 1.0]])
    out = tm.weighted_mean(v, w)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1]) and out[2] == pytest.approx(7 / 3)
    assert math.isnan(tm.weighted_mean(np.array([np.nan, np.nan])))
    with pytest.raises(ValueError):
        tm.weighted_mean(v, np.ones(4))


# --------------------------------------------------------------------------- boxes

def test_box_known_answers() -> None:
    true = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9], [np.nan] * 4])
    m = tm.box_metrics(true.copy(), true)
    assert m["iou"] == pytest.approx(1.0) and m["detection_rate"] == pytest.approx(1.0)
    assert m["center_error"] == pytest.approx(0.0)
    disjoint = np.array([[0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2], [0, 0, 1, 1]])
    m = tm.box_metrics(disjoint, true)
    assert m["iou"] == 0.0 and m["detection_rate"] == 0.0
    # quarter-image boxes shifted by a quarter: IoU 1/16 / (1/4 + 1/4 - 1/16) = 1/7
    iou = tm.box_iou(np.array([[0, 0, 0.5, 0.5]]), np.array([[0.25, 0.25, 0.75, 0.75]]))
    assert iou[0] == pytest.approx(1 / 7)
    m = tm.box_metrics(np.array([[0, 0, 0.5, 0.5]]), np.array([[0.25, 0.25, 0.75, 0.75]]))
    assert m["center_error"] == pytest.approx(math.hypot(0.25, 0.25))


def test_box_iou_matches_monai_and_handles_missing_rows() -> None:
    from monai.data.box_utils import box_iou as monai_box_iou

    rng = np.random.default_rng(0)
    lo = rng.random((50, 2)) * 0.6
    true = np.concatenate([lo, lo + 0.05 + rng.random((50, 2)) * 0.35], axis=1)
    pred = np.clip(true + rng.normal(0, 0.08, true.shape), 0, 1)
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 0.01)
    ref = np.diag(monai_box_iou(pred, true))
    assert _close(tm.box_iou(pred, true), ref, 1e-5)  # monai: float32, eps in the union
    true[3] = np.nan
    pred[7] = np.nan  # a model that predicted nothing where there is a box
    iou = tm.box_iou(pred, true)
    assert math.isnan(iou[3]) and iou[7] == 0.0
    m = tm.box_metrics(pred, true)
    keep = np.ones(50, bool)
    keep[3] = False
    assert m["iou"] == pytest.approx(iou[keep].mean())
    assert m["detection_rate"] == pytest.approx((iou[keep] >= 0.5).mean())


# --------------------------------------------------------------------------- masks

def _random_masks(rng: np.random.Generator, n: int = 12, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    true = np.zeros((n, 1, size, size), np.uint8)
    pred = np.zeros((n, 1, size, size), bool)
    for i in range(n):
        y, x = rng.integers(0, size - 6, 2)
        true[i, 0, y:y + 6, x:x + 5] = 1
        y, x = np.clip([y, x] + rng.integers(-3, 4, 2), 0, size - 6)
        pred[i, 0, y:y + 5, x:x + 6] = True
    return pred, true


def test_mask_known_answers_and_ignored_cases() -> None:
    pred, true = _random_masks(np.random.default_rng(1), n=6)
    s = tm.mask_scores(true.astype(bool), true)
    assert _close(s["dice"], 1.0) and _close(s["iou"], 1.0)
    true[1] = 0  # no lesion, nothing predicted: a correct empty answer
    pred[1] = False
    true[2] = 0  # no lesion, something predicted: wrong
    true[3] = 255  # ignored case
    s = tm.mask_scores(pred, true)
    assert s["dice"][1] == 1.0 and s["iou"][1] == 1.0
    assert s["dice"][2] == 0.0 and s["iou"][2] == 0.0
    assert math.isnan(s["dice"][3]) and math.isnan(s["true_pixels"][3])
    m = tm.mask_metrics(s)
    assert m["dice"] == pytest.approx(s["dice"][[0, 1, 2, 4, 5]].mean())
    assert m["dice_lesion"] == pytest.approx(s["dice"][[0, 4, 5]].mean())
    assert m["iou_lesion"] == pytest.approx(s["iou"][[0, 4, 5]].mean())
    bad = true.copy()
    bad[0, 0, 0, 0] = 255
    with pytest.raises(ValueError):
        tm.mask_scores(pred, bad)


def test_mask_scores_match_monai_and_torchmetrics() -> None:
    from monai.metrics import compute_dice, compute_iou
    from torchmetrics.functional.segmentation import dice_score

    pred, true = _random_masks(np.random.default_rng(2))
    true[0] = 0  # empty truth: monai with ignore_empty=False uses the same 1 / 0 convention
    pred[0] = False
    true[1] = 0
    s = tm.mask_scores(pred, true)
    p, t = torch.from_numpy(pred).float(), torch.from_numpy(true).float()
    assert _close(s["dice"], compute_dice(p, t, ignore_empty=False).numpy().ravel(), 1e-6)
    assert _close(s["iou"], compute_iou(p, t, ignore_empty=False).numpy().ravel(), 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmd = dice_score(torch.from_numpy(pred[2:]).long(), torch.from_numpy(true[2:]).long(),
                         num_classes=1, average="none").numpy().ravel()
    assert _close(s["dice"][2:], tmd, 1e-6)


# --------------------------------------------------------------------------- text

def _words(s: np.ndarray) -> str:
    return " ".join(f"w{t}" for t in s)


def _text_corpus(rng: np.random.Generator, n: int = 30) -> tuple[list[np.ndarray], list[np.ndarray]]:
    refs = [rng.integers(4, 30, rng.integers(3, 15)) for _ in range(n)]
    hyps = []
    for r in refs:  # edited copies: real overlap at every n-gram order
        h = r.copy()
        h[rng.random(h.size) < 0.3] = rng.integers(4, 30)
        hyps.append(np.concatenate([h, rng.integers(4, 30, rng.integers(0, 3))])[: rng.integers(1, 18)])
    return hyps, refs


def test_strip_cuts_at_eos_and_drops_padding() -> None:
    ids = np.array([[2, 7, 8, 3, 9, 0], [2, 5, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = tm.strip(ids, pad=0, eos=3, bos=2)
    assert [o.tolist() for o in out] == [[7, 8], [5], []]
    assert tm.strip(np.array([7, 0, 8, 3, 9]), eos=3).tolist() == [7, 8]


def test_bleu_hand_computed_example() -> None:
    # hyp a b c d e, ref a b c x e f: precisions 4/5, 2/4, 1/3, 0/2; c = 5 < r = 6.
    hyp, ref = np.array([1, 2, 3, 4, 5]), np.array([1, 2, 3, 9, 5, 6])
    st = tm.bleu_stats([hyp], [ref])
    assert st[0].tolist() == [4, 2, 1, 0, 5, 4, 3, 2, 5, 6]
    bp = math.exp(1 - 6 / 5)
    assert tm.corpus_bleu(st, max_n=1) == pytest.approx(bp * 0.8)
    assert tm.corpus_bleu(st, max_n=2) == pytest.approx(bp * math.sqrt(0.8 * 0.5))
    assert tm.corpus_bleu(st, max_n=3) == pytest.approx(bp * (0.8 * 0.5 / 3) ** (1 / 3))
    assert tm.corpus_bleu(st, max_n=4) == 0.0  # no 4-gram matches, no smoothing
    same = tm.text_metrics([ref, hyp], [ref, hyp])
    for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"):
        assert same[k] == pytest.approx(1.0), k


def test_bleu_and_rouge_match_torchmetrics() -> None:
    from torchmetrics.functional.text import bleu_score, rouge_score

    hyps, refs = _text_corpus(np.random.default_rng(3))
    hs, rs = [_words(h) for h in hyps], [_words(r) for r in refs]
    st = tm.bleu_stats(hyps, refs)
    for n in range(1, 5):
        ref = float(bleu_score(hs, [[r] for r in rs], n_gram=n))
        assert ref > 0
        assert tm.corpus_bleu(st, max_n=n) == pytest.approx(ref, abs=1e-6), n
    ours = tm.rouge_l(hyps, refs)
    for i in range(len(hs)):
        ref = float(rouge_score(hs[i], rs[i], rouge_keys="rougeL")["rougeL_fmeasure"])
        assert ours[i] == pytest.approx(ref, abs=1e-6), i


def _slow_lcs(a: list[int], b: list[int]) -> int:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


def test_rouge_l_matches_table_lcs_on_long_sequences() -> None:
    rng = np.random.default_rng(4)
    for _ in range(40):
        a, b = rng.integers(0, 6, rng.integers(1, 90)), rng.integers(0, 6, rng.integers(1, 90))
        m = _slow_lcs(a.tolist(), b.tolist())
        assert tm.rouge_l([a], [b])[0] == pytest.approx(2 * m / (a.size + b.size))


def test_text_edge_cases_and_unknown_words() -> None:
    unk = 1
    # an unknown reference word matches nothing, not even an unknown hypothesis word
    st = tm.bleu_stats([np.array([1, 5, 6])], [np.array([1, 5, 6])], unk=unk)
    assert st[0, :4].tolist() == [2, 1, 0, 0]
    assert tm.rouge_l([np.array([1, 1])], [np.array([1, 1])], unk=unk)[0] == 0.0
    assert tm.meteor([np.array([1])], [np.array([1])], unk=unk)[0] == 0.0
    # empty reference = no reference text: undefined and absent from corpus sums
    hyps, refs = [np.array([5, 6]), np.array([], int)], [np.array([], int), np.array([5, 6])]
    assert math.isnan(tm.rouge_l(hyps, refs)[0]) and tm.rouge_l(hyps, refs)[1] == 0.0
    assert math.isnan(tm.meteor(hyps, refs)[0]) and tm.meteor(hyps, refs)[1] == 0.0
    assert not tm.bleu_stats(hyps, refs)[0].any()


def test_meteor_known_answers() -> None:
    # identical, 4 words: one chunk -> 1 - 0.5 (1/4)^3
    assert tm.meteor([np.arange(4)], [np.arange(4)])[0] == pytest.approx(1 - 0.5 / 64)
    # swapped halves: 4 matches in 2 chunks, P = R = 1 -> 1 - 0.5 (2/4)^3
    assert tm.meteor([np.array([0, 1, 2, 3])], [np.array([2, 3, 0, 1])])[0] == pytest.approx(0.9375)
    # "the cat" against "the dog the cat": aligned to the contiguous "the cat" (1 chunk)
    p, r = 1.0, 0.5
    want = 10 * p * r / (r + 9 * p) * (1 - 0.5 * (1 / 2) ** 3)
    assert tm.meteor([np.array([1, 2])], [np.array([1, 3, 1, 2])])[0] == pytest.approx(want)
    # every possible match is made even when repeats compete
    al = tm._align([1, 2, 1, 2, 1], [2, 1, 1, 2])
    assert len(al) == 4 and len({i for i, _ in al}) == 4 and len({j for _, j in al}) == 4


def test_text_weights_equal_repeated_cases() -> None:
    rng = np.random.default_rng(5)
    hyps, refs = _text_corpus(rng, n=12)
    idx, w = _boot(rng, 12)
    boot = tm.text_metrics(hyps, refs, w)
    for b in range(idx.shape[0]):
        again = tm.text_metrics([hyps[i] for i in idx[b]], [refs[i] for i in idx[b]])
        for k in tm.METRICS_BY_TYPE["text"]:
            assert boot[k][b] == pytest.approx(again[k], abs=1e-12), (k, b)


# --------------------------------------------------------------------------- survival

def _slow_c(risk, time, event, w=None) -> float:
    w = np.ones(len(risk)) if w is None else w
    num = den = 0.0
    for i in range(len(risk)):
        for j in range(len(risk)):
            if i == j or not event[i]:
                continue
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                den += w[i] * w[j]
                num += w[i] * w[j] * (1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0)
    return num / den if den else float("nan")


def test_concordance_known_answers() -> None:
    time = np.array([1.0, 2, 3, 4, 5, 6])
    event = np.array([1, 1, 0, 1, 1, 0])
    assert tm.concordance_index(-time, time, event) == pytest.approx(1.0)
    assert tm.concordance_index(time, time, event) == pytest.approx(0.0)
    assert tm.concordance_index(np.zeros(6), time, event) == pytest.approx(0.5)
    assert math.isnan(tm.concordance_index(np.arange(6.0), time, np.zeros(6)))
    # tied times: event-vs-censored is comparable (event first), event-vs-event is not
    t2, e2 = np.array([2.0, 2.0, 2.0]), np.array([1, 0, 1])
    assert tm.concordance_index(np.array([3.0, 1.0, 0.0]), t2, e2) == pytest.approx(0.5)
    assert tm.survival_metrics(-time, time, event)["c_index"] == pytest.approx(1.0)


def test_concordance_matches_double_loop_with_ties_and_weights(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    n = 40
    time = rng.integers(1, 12, n).astype(float)  # many tied times
    event = rng.integers(0, 2, n)
    risk = np.round(rng.normal(size=n) - 0.1 * time, 1)  # some tied risks
    assert tm.concordance_index(risk, time, event) == pytest.approx(_slow_c(risk, time, event))
    idx, w = _boot(rng, n)
    monkeypatch.setattr(tm, "_BLOCK_ELEMENTS", 97)  # force many row blocks
    got = tm.concordance_index(risk, time, event, w)
    for b in range(idx.shape[0]):
        assert got[b] == pytest.approx(_slow_c(risk, time, event, w[b]))
        i = idx[b]
        assert got[b] == pytest.approx(tm.concordance_index(risk[i], time[i], event[i]))


def test_concordance_matches_lifelines_if_installed() -> None:
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(7)
    time, event, risk = rng.integers(1, 9, 60).astype(float), rng.integers(0, 2, 60), rng.normal(size=60)
    ref = lifelines.utils.concordance_index(time, -risk, event)
    assert tm.concordance_index(risk, time, event) == pytest.approx(ref)


# --------------------------------------------------------------------------- regression

def test_regression_matches_scikit_learn_with_weights() -> None:
    rng = np.random.default_rng(8)
    true = rng.normal(50, 3, 30)
    pred = true + rng.normal(0, 1.5, 30)
    true[[4, 9]] = np.nan
    ok = ~np.isnan(true)
    idx, w = _boot(rng, 30)
    got = tm.regression_metrics(pred, true, w)
    for b in range(idx.shape[0]):
        sw = w[b][ok]
        assert got["mae"][b] == pytest.approx(mean_absolute_error(true[ok], pred[ok], sample_weight=sw))
        assert got["rmse"][b] == pytest.approx(math.sqrt(mean_squared_error(true[ok], pred[ok], sample_weight=sw)))
        assert got["r2"][b] == pytest.approx(r2_score(true[ok], pred[ok], sample_weight=sw))
    one = tm.regression_metrics(pred, true)
    assert one["r2"] == pytest.approx(r2_score(true[ok], pred[ok]))
    assert tm.regression_metrics(true, true)["rmse"] == 0.0
    assert math.isnan(tm.regression_metrics(np.arange(4.0), np.full(4, 7.0))["r2"])


# --------------------------------------------------------------------------- all types

def test_every_type_bootstraps_like_resampling_and_names_match() -> None:
    rng = np.random.default_rng(9)
    n = 16
    lo = rng.random((n, 2)) * 0.5
    boxes = np.concatenate([lo, lo + 0.2 + rng.random((n, 2)) * 0.3], axis=1)
    pboxes = np.clip(boxes + rng.normal(0, 0.1, boxes.shape), 0, 1)
    boxes[2] = np.nan
    pm, tmask = _random_masks(rng, n)
    tmask[3] = 255
    tmask[4] = 0
    scores = tm.mask_scores(pm, tmask)
    risk, time, event = rng.normal(size=n), rng.integers(1, 6, n).astype(float), rng.integers(0, 2, n)
    yp, yt = rng.normal(size=n), rng.normal(size=n)
    idx, w = _boot(rng, n, b=5)
    calls = {
        "box": lambda ii, ww: tm.box_metrics(pboxes[ii], boxes[ii], ww),
        "mask": lambda ii, ww: tm.mask_metrics({k: v[ii] for k, v in scores.items()}, ww),
        "survival": lambda ii, ww: tm.survival_metrics(risk[ii], time[ii], event[ii], ww),
        "regression": lambda ii, ww: tm.regression_metrics(yp[ii], yt[ii], ww),
    }
    everything = np.arange(n)
    for kind, f in calls.items():
        boot = f(everything, w)
        assert set(boot) == set(tm.METRICS_BY_TYPE[kind]) and tm.PRIMARY[kind] in boot
        single = f(everything, None)
        assert all(isinstance(v, float) for v in single.values())
        for b in range(w.shape[0]):
            again = f(idx[b], None)
            for k in boot:
                assert boot[k].shape == (w.shape[0],)
                assert _close(boot[k][b], again[k], 1e-9), (kind, k, b)
    assert set(tm.PRIMARY) == set(tm.METRICS_BY_TYPE) == set(tm.METRIC_FUNCTIONS)
    assert {m for names in tm.METRICS_BY_TYPE.values() for m in names} >= tm.LOWER_IS_BETTER
