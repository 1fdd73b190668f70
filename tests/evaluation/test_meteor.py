"""METEOR 1.5: the jar's statistics summed in numpy give the jar's own scores, per case, for the
corpus and for every bootstrap replicate; without words or Java it is NaN, said once."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from fusiondx.evaluation import meteor as mt
from fusiondx.evaluation import text as tx
from fusiondx.evaluation.weights import weights_from_indices

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR 1.5 is a Java program")
WORDS = [
    "the",
    "heart",
    "is",
    "normal",
    "size",
    "lungs",
    "are",
    "clear",
    "no",
    "pleural",
    "effusion",
    "pneumothorax",
    "mild",
    "cardiomegaly",
    "enlarged",
    "stable",
    "opacity",
    "left",
    "right",
    "lower",
    "lobe",
    "consolidation",
    "seen",
    ".",
    ",",
    ",",
    "with",
    "without",
]


def _reports(rng: np.random.Generator, n: int = 40) -> tuple[list[str], list[str]]:
    refs = [" ".join(rng.choice(WORDS, rng.integers(3, 20))) for _ in range(n)]
    hyps = []
    for r in refs:
        words = [w if rng.random() > 0.3 else str(rng.choice(WORDS)) for w in r.split()]
        hyps.append(" ".join(words[: rng.integers(0, 22)]))
    hyps[1] = refs[1]  # a perfect match: one chunk, which the corpus sums leave out
    hyps[2] = ""
    refs[3] = "the [UNK] is enlarged"  # an unknown reference word
    hyps[3] = "the [UNK] is enlarged"
    return hyps, refs


def _jar_eval(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """The jar's own scores of statistics rows: one per row, then the aggregate (its EVAL)."""
    proc = mt._process()
    assert proc is not None and proc.stdin is not None and proc.stdout is not None
    with mt._lock:
        proc.stdin.write(
            "EVAL ||| " + " ||| ".join(" ".join(repr(float(v)) for v in r) for r in rows) + "\n"
        )
        proc.stdin.flush()
        per_case = np.array([float(proc.stdout.readline()) for _ in rows])
        return per_case, float(proc.stdout.readline())


def test_score_formula_known_answers_from_the_jar() -> None:
    # "heart size is normal" against "the heart is normal ." (the jar: 0.3417646745111195), and a
    # hand-written row the jar's EVAL scored 0.46651955664947536.
    rows = np.zeros((2, mt.N_STATS))
    rows[0, [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22]] = [4, 5, 1, 3, 2, 2, 1, 1, 2, 3, 3]
    rows[1, [0, 1, 2, 3, 4, 5, 20, 21, 22]] = [4, 4, 1, 1, 3, 3, 1, 3, 3]
    assert mt.score_rows(rows) == pytest.approx(
        [0.3417646745111195, 0.46651955664947536], rel=1e-12
    )
    assert mt.meteor_from_stats(rows[1:]) == pytest.approx(0.46651955664947536, rel=1e-12)
    assert math.isnan(mt.meteor_from_stats(np.full((2, mt.N_STATS), np.nan)))


@needs_java
def test_per_case_corpus_and_replicates_equal_the_jar() -> None:
    rng = np.random.default_rng(0)
    hyps, refs = _reports(rng)
    stats = tx.meteor_stats_of(hyps, refs, unk="[UNK]")
    assert np.isfinite(stats).all() and stats.shape == (40, mt.N_STATS)
    jar_per_case, jar_corpus = _jar_eval(stats)
    assert np.allclose(tx.meteor(hyps, refs, unk="[UNK]"), jar_per_case, rtol=1e-12, atol=1e-15)
    metrics = tx.text_metrics(hyps, refs, unk="[UNK]")
    assert metrics["meteor"] == pytest.approx(jar_corpus, rel=1e-9)
    assert 0 < jar_corpus < 1 and jar_per_case[1] > 0.99 and jar_per_case[2] == 0.0
    idx = rng.integers(0, 40, (4, 40))
    boot = mt.meteor_from_stats(stats, weights_from_indices(idx, 40))
    for b in range(idx.shape[0]):
        assert boot[b] == pytest.approx(_jar_eval(stats[idx[b]])[1], rel=1e-9), b


@needs_java
def test_a_case_without_reference_drops_out() -> None:
    hyps, refs = _reports(np.random.default_rng(1), n=10)
    alone = tx.text_metrics(hyps, refs, unk="[UNK]")["meteor"]
    more = tx.text_metrics([*hyps, "the heart"], [*refs, ""], unk="[UNK]")["meteor"]
    assert more == pytest.approx(alone, rel=1e-12)
    assert math.isnan(tx.meteor(["the heart"], [""])[0])


def test_nan_on_token_ids_and_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_jar() -> None:
        raise AssertionError("token ids must not start Java")

    monkeypatch.setattr(mt, "_process", no_jar)
    assert np.isnan(tx.meteor([np.array([5, 6])], [np.array([5, 6])])).all()
    monkeypatch.undo()
    monkeypatch.setattr(mt, "_proc", None)
    monkeypatch.setattr(mt, "_unavailable", None)
    monkeypatch.setattr(mt.shutil, "which", lambda name: None)
    assert "Java" in str(mt.meteor_unavailable())
    with pytest.warns(RuntimeWarning, match="METEOR is NaN: Java is not installed"):
        got = tx.text_metrics(["the heart is normal"], ["the heart is normal"])
    assert math.isnan(got["meteor"]) and got["bleu4"] == pytest.approx(1.0)


@needs_java
@pytest.mark.slow
def test_corpus_meteor_equals_pycocoevalcap() -> None:
    from pycocoevalcap.meteor.meteor import Meteor

    hyps, refs = _reports(np.random.default_rng(2), n=30)
    score, per_case = Meteor().compute_score(
        {i: [r] for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)}
    )
    assert tx.text_metrics(hyps, refs)["meteor"] == pytest.approx(score, rel=1e-9)
    assert np.allclose(tx.meteor(hyps, refs), per_case, rtol=1e-12, atol=1e-15)
