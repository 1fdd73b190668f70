"""Preprocessing is fitted on the training split only, and never hides a missing value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fusiondx
from fusiondx.data.preprocessors.tabular import MISSING_ID, UNKNOWN_ID
from fusiondx.data.shards import ShardedArray
from fusiondx.data.store import prepare


def _with_manifest(
    cfg: dict[str, Any], cohort: Path, name: str, df: pd.DataFrame
) -> dict[str, Any]:
    path = cohort / f"pp_{name}.csv"
    df.to_csv(path, index=False)
    out = copy.deepcopy(cfg)
    out["data"]["manifest"] = str(path)
    return out


def _manifest(cohort: Path) -> pd.DataFrame:
    return pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)


def test_tabular_statistics_and_vocabulary_come_from_train_only(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    base = prepare(fusiondx.load_config(quick_config))
    test_rows = np.flatnonzero(base.store.split == "test")
    df = _manifest(cohort_dir)
    df.loc[test_rows, "crp"] = "100000"  # an absurd value only in test
    df.loc[test_rows[0], "smoker"] = "vaper"  # a category never seen in training
    p = prepare(fusiondx.load_config(_with_manifest(quick_config, cohort_dir, "leak", df)))
    assert np.array_equal(p.store.split, base.store.split)
    assert p.preprocessors["labs"].state()["mean"] == base.preprocessors["labs"].state()["mean"]
    assert "vaper" not in p.preprocessors["labs"].state()["vocab"]["smoker"]
    col = p.preprocessors["labs"].categorical.index("smoker")
    assert p.store.inputs["labs"]["categorical"][test_rows[0], col] == UNKNOWN_ID


def test_nan_becomes_missing_flag_not_a_silent_zero(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    df = _manifest(cohort_dir)
    df.loc[5, "crp"] = ""
    df.loc[5, "smoker"] = ""
    df.loc[5, "troponin"] = "3.5"
    p = prepare(fusiondx.load_config(_with_manifest(quick_config, cohort_dir, "nan", df)))
    labs = p.preprocessors["labs"]
    arrays = p.store.inputs["labs"]
    j = labs.numeric.index("crp")
    assert arrays["numeric_missing"][5, j] == 1.0 and arrays["numeric"][5, j] == 0.0
    assert arrays["categorical"][5, labs.categorical.index("smoker")] == MISSING_ID
    k = labs.numeric.index("troponin")
    state = labs.state()
    assert arrays["numeric"][5, k] == np.float32((3.5 - state["mean"][k]) / state["std"][k])
    assert arrays["numeric_missing"][5, k] == 0.0


def test_tokenizer_is_fitted_on_train_text_only(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    base = prepare(fusiondx.load_config(quick_config))
    test_rows = np.flatnonzero(
        (base.store.split == "test") & base.store.mask[:, base.store.modalities.index("report")]
    )
    df = _manifest(cohort_dir)
    df.loc[test_rows, "report"] = "zyxwvut " + df.loc[test_rows, "report"]  # a test-only word
    cfg = _with_manifest(quick_config, cohort_dir, "tok", df)
    cfg["modalities"][2]["preprocessing"]["tokenizer"] = "word"
    cfg["modalities"][2]["preprocessing"]["min_frequency"] = 1
    p = prepare(fusiondx.load_config(cfg))
    tok = p.preprocessors["report"].tokenizer
    assert tok.token_to_id("zyxwvut") is None
    ids = p.store.inputs["report"][""][test_rows[0]]
    assert 1 in ids  # the unseen word became [UNK]


def test_missing_modality_is_a_zero_placeholder_with_mask_false(
    quick_config: dict[str, Any], cohort_dir: Path
) -> None:
    p = prepare(fusiondx.load_config(quick_config))
    df = _manifest(cohort_dir)
    j = p.store.modalities.index("cxr")
    missing = np.flatnonzero(df["image"].to_numpy() == "")
    assert len(missing) > 0
    assert not p.store.mask[missing, j].any()
    assert np.all(p.store.inputs["cxr"][""][missing] == 0)
    assert p.store.mask[df["image"].to_numpy() != "", j].all()


def test_same_data_same_arrays_including_wordpiece_ids(quick_config: dict[str, Any]) -> None:
    a = prepare(fusiondx.load_config(quick_config))
    b = prepare(fusiondx.load_config(quick_config))
    for m in a.store.modalities:
        for k, arr in a.store.inputs[m].items():
            assert np.array_equal(arr, b.store.inputs[m][k]), (m, k)


def test_disk_cache_is_reused_without_decoding(
    quick_config: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    quick_config["data"]["cache"] = "disk"
    quick_config["data"]["cache_dir"] = str(tmp_path / "cache")
    first = prepare(fusiondx.load_config(quick_config))
    from fusiondx.data.preprocessors import base

    def no_decoding(*a: Any, **k: Any) -> None:
        raise AssertionError("decoded a file although the cache holds it")

    monkeypatch.setattr(base.FilePreprocessor, "load_file", no_decoding)
    second = prepare(fusiondx.load_config(quick_config))
    assert isinstance(second.store.inputs["cxr"][""], ShardedArray)
    assert np.array_equal(first.store.inputs["cxr"][""], second.store.inputs["cxr"][""])
    # a run on a subset of the modalities (a study's baseline) reuses the same decoded arrays
    quick_config["modalities"] = [m for m in quick_config["modalities"] if m["name"] == "ecg"]
    only_ecg = prepare(fusiondx.load_config(quick_config))
    assert np.array_equal(first.store.inputs["ecg"][""], only_ecg.store.inputs["ecg"][""])
    assert not list((tmp_path / "cache").rglob("*.tmp.npy")), "no half-written files are left"


def test_tokenizers_are_identical_across_processes(cohort_dir: Path) -> None:
    """Rust hash maps are seeded per process; a trained vocabulary must not depend on that."""
    import subprocess
    import sys

    script = (
        "import sys, json, pandas as pd\n"
        "from fusiondx.data.preprocessors.text import _new_tokenizer, _wordpiece_from_bpe\n"
        "texts = pd.read_csv(sys.argv[1])['report'].dropna().str.lower().tolist()\n"
        "out = {}\n"
        "for kind in ('wordpiece', 'bpe', 'word'):\n"
        "    tok, tr = _new_tokenizer(kind, 600, 1)\n"
        "    tok.train_from_iterator(texts, trainer=tr)\n"
        "    tok = _wordpiece_from_bpe(tok) if kind == 'wordpiece' else tok\n"
        "    out[kind] = sorted(tok.get_vocab().items())\n"
        "print(json.dumps(out))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(cohort_dir / "manifest.csv")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(3)
    ]
    assert runs[0] == runs[1] == runs[2]
