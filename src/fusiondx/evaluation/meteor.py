"""METEOR 1.5 as coco-caption computes it: pycocoevalcap's jar, summed statistics in numpy.

pycocoevalcap scores METEOR with the METEOR 1.5 jar it ships (``java -jar meteor-1.5.jar - -
-stdio -l en -norm``: exact, stem, WordNet-synonym and paraphrase matching, the paraphrase table
included, so nothing is downloaded). For each case the jar returns 23 sufficient statistics;
coco-caption's corpus METEOR is the jar's score of the summed statistics, not the mean of the
per-case scores. :func:`meteor_stats` asks the jar for those statistics (one Java process per
Python process, started on first use, about 15 s and 1 GB); :func:`meteor_from_stats` sums them
under case weights and applies METEOR 1.5's formula (``MeteorScorer.computeMetrics``), so the
bootstrap costs no further call to Java. Tests check it against the jar's own scores.

METEOR needs words (its stemming, synonyms and paraphrases match words, not token ids) and
Java. Where there is no ``java`` on the PATH the statistics are NaN (the metric is undefined
here) and a warning says so once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusiondx.evaluation.weights import case_weights, per_replicate

N_STATS = 23  # MeteorStats.STATS_LENGTH: lengths, function words, 4 modules x 4 matches, chunks...
# METEOR 1.5 for English, task "default" (what -l en uses; the jar prints them as its Eval ID):
# alpha, beta, gamma, delta and the weights of the exact, stem, synonym and paraphrase modules.
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
MODULE_WEIGHTS = np.array([1.0, 0.6, 0.8, 0.6])
_BATCH = 256  # lines written before their answers are read: pipes never fill up

_lock = threading.Lock()
_proc: subprocess.Popen[str] | None = None
_owner = 0  # the pid that started _proc: a forked child must not write into its parent's pipes
_unavailable: str | None = None


def meteor_stats(pairs: Sequence[tuple[str, str] | None]) -> np.ndarray:
    """Per-case METEOR 1.5 statistics (N, 23) of (hypothesis, reference) strings of words.

    ``None`` marks a case without a reference: a NaN row. Every row is NaN when Java or the jar
    cannot run here (see :func:`meteor_unavailable`).
    """
    out = np.full((len(pairs), N_STATS), np.nan)
    todo = [i for i, p in enumerate(pairs) if p is not None]
    if not todo:
        return out
    with _lock:
        proc = _process()
        if proc is None:
            return out
        try:
            for s in range(0, len(todo), _BATCH):
                part = todo[s : s + _BATCH]
                assert proc.stdin is not None and proc.stdout is not None
                for i in part:
                    hyp, ref = pairs[i]  # type: ignore[misc]
                    proc.stdin.write(f"SCORE ||| {_clean(ref)} ||| {_clean(hyp)}\n")
                proc.stdin.flush()
                for i in part:
                    out[i] = [float(v) for v in proc.stdout.readline().split()]
        except (OSError, ValueError) as err:  # the jar died or answered something else
            _give_up(f"the METEOR jar stopped answering ({err!r})")
            out[:] = np.nan
    return out


def meteor_from_stats(stats: np.ndarray, w: np.ndarray | None = None) -> float | np.ndarray:
    """Corpus METEOR 1.5 of the (weighted) summed statistics, as the jar's ``EVAL`` scores them.

    As ``MeteorStats.addStats``, a case that matched its reference perfectly in one chunk adds no
    chunk. NaN rows (no reference, no Java) drop out; NaN when no case is left.
    """
    s = np.asarray(stats, dtype=np.float64).reshape(-1, N_STATS)
    ok = np.asarray(np.isfinite(s).all(axis=1))  # an array: numpy's stubs allow a scalar
    s = np.where(ok[:, None], s, 0.0)
    ww = case_weights(w, s.shape[0]) * ok
    summed = ww @ s
    summed[:, 20] = ww @ np.where(_perfect(s), 0.0, s[:, 20])
    score = np.where(ww.sum(axis=1) > 0, score_rows(summed), np.nan)
    return per_replicate(score, w)


def score_rows(s: np.ndarray) -> np.ndarray:
    """METEOR 1.5's score of each row of statistics (``MeteorScorer.computeMetrics``)."""
    s = np.asarray(s, dtype=np.float64).reshape(-1, N_STATS)
    test_len, ref_len, test_fn, ref_fn = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    stage = s[:, 4:20].reshape(-1, 4, 4)  # modules x (test content, ref content, test fn, ref fn)
    with np.errstate(divide="ignore", invalid="ignore"):
        test_wlen = DELTA * (test_len - test_fn) + (1 - DELTA) * test_fn
        ref_wlen = DELTA * (ref_len - ref_fn) + (1 - DELTA) * ref_fn
        test_wm = stage[:, :, 0] @ MODULE_WEIGHTS * DELTA + stage[:, :, 2] @ MODULE_WEIGHTS * (
            1 - DELTA
        )
        ref_wm = stage[:, :, 1] @ MODULE_WEIGHTS * DELTA + stage[:, :, 3] @ MODULE_WEIGHTS * (
            1 - DELTA
        )
        p, r = test_wm / test_wlen, ref_wm / ref_wlen
        fmean = 1.0 / ((1 - ALPHA) / p + ALPHA / r)
        frag = np.where(_perfect(s), 0.0, s[:, 20] / ((s[:, 21] + s[:, 22]) / 2))
        score = fmean * (1.0 - GAMMA * frag**BETA)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))  # the jar: NaN -> 0, >= 0


def _perfect(s: np.ndarray) -> np.ndarray:
    """Every word matched on both sides in one chunk (the jar's "test = ref" case)."""
    stage = s[:, 4:20].reshape(-1, 4, 4)
    test_total = stage[:, :, 0].sum(axis=1) + stage[:, :, 2].sum(axis=1)
    ref_total = stage[:, :, 1].sum(axis=1) + stage[:, :, 3].sum(axis=1)
    return (test_total == s[:, 0]) & (ref_total == s[:, 1]) & (s[:, 20] == 1)


def meteor_unavailable() -> str | None:
    """Why METEOR cannot be computed here (no Java, no jar, the jar failed), or None."""
    if _unavailable is None and shutil.which("java") is None:
        return "Java is not installed (METEOR 1.5 is a Java program): install a Java runtime"
    return _unavailable


def _clean(text: str) -> str:
    # As pycocoevalcap's Meteor._stat: '|||' separates the fields of the jar's input line.
    return " ".join(text.replace("|||", "").split())


def _process() -> subprocess.Popen[str] | None:
    global _proc, _owner
    if _proc is not None and _owner != os.getpid():
        _proc = None  # inherited through fork: the parent's, left alone
    if _proc is not None and _proc.poll() is None:
        return _proc
    why = meteor_unavailable()
    if why is not None:
        _give_up(why)
        return None
    from pycocoevalcap.meteor import meteor as coco_meteor

    folder = Path(coco_meteor.__file__).parent
    # pycocoevalcap's command; stdin at EOF (this process gone, however it ended) ends the jar.
    try:
        _proc = subprocess.Popen(
            [
                "java",
                "-jar",
                "-Xmx2G",
                coco_meteor.METEOR_JAR,
                "-",
                "-",
                "-stdio",
                "-l",
                "en",
                "-norm",
            ],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
    except OSError as err:
        _give_up(f"Java could not start the METEOR jar ({err})")
        return None
    _owner = os.getpid()
    atexit.register(_close)
    return _proc


def _give_up(why: str) -> None:
    global _unavailable
    if _unavailable is None:
        _unavailable = why
        warnings.warn(f"METEOR is NaN: {why}.", RuntimeWarning, stacklevel=3)
    _close()


def _close() -> None:
    global _proc
    proc, _proc = _proc, None
    if proc is None or _owner != os.getpid():
        return
    try:
        if proc.stdin is not None:
            proc.stdin.close()  # the jar ends at the end of its input
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
