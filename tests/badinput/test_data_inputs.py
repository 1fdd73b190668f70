"""Data-input failures of issue 14 (items 4, 5, 8, 9, 10, 12, 13), each through the CLI.

Every test builds a copy of one tiny cohort in its tmp_path, breaks it the way a user's data
breaks, and runs `fusiondx validate` and/or `fusiondx fit`. An input error must end with exit code
2, no traceback, a message naming the file / case / column and a fix, and the user's files
byte-identical; a warning must be printed once, with a count and case ids, and the run proceed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import fusiondx
from fusiondx.cli import app
from fusiondx.data.store import prepare

runner = CliRunner()
N_CASES = 120
IMAGE = {
    "name": "cxr",
    "kind": "image",
    "column": "image",
    "preprocessing": {"size": [16, 16]},
    "encoder": {"name": "cnn"},
}
ECG = {
    "name": "ecg",
    "kind": "signal",
    "column": "ecg",
    "preprocessing": {"rate": 50, "length": 500},
}
REPORT = {
    "name": "report",
    "kind": "text",
    "column": "report",
    "preprocessing": {"tokenizer": "word", "vocab_size": 100, "max_length": 16},
    "encoder": {"name": "lowlevel_text"},
}


@pytest.fixture(scope="module")
def base_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusiondx.datasets.synthetic import make_cohort

    out = tmp_path_factory.mktemp("badinput_cohort")
    make_cohort(out, n_cases=N_CASES, seed=3, image_size=16, missing_rate=0.0)
    return out


@pytest.fixture
def data(base_cohort: Path, tmp_path: Path) -> Path:
    """This test's own copy of the cohort (the data root)."""
    out = tmp_path / "data"
    shutil.copytree(base_cohort, out)
    return out


def _config(
    tmp_path: Path,
    data: Path,
    modalities: list[dict[str, Any]],
    *,
    manifest: str = "manifest.csv",
    **data_keys: Any,
) -> Path:
    cfg = {
        "name": "bad",
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "data": {"manifest": str(data / manifest), "patient_column": "patient_id", **data_keys},
        "modalities": modalities,
        "fusion": {"name": "concat", "dim": 8},
        "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
        "train": {
            "epochs": 1,
            "batch_size": 64,
            "progress": False,
            "early_stopping": None,
            "small_data": "off",
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (a symlink by its target's bytes and its target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() or p.is_symlink():
            key = str(p.relative_to(folder))
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "dangling"
            if p.is_symlink():
                out[key] += " -> " + os.readlink(p)
    return out


def _run(command: str, cfg: Path) -> Any:
    # A test fits twice into one run folder (before and after changing a file).
    args = [command, str(cfg)] + (["--quiet", "--overwrite"] if command == "fit" else [])
    return runner.invoke(app, args)


def _error(command: str, cfg: Path, *needles: str) -> str:
    """Run a command that must stop on a user error; the message holds every needle."""
    result = _run(command, cfg)
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out, out
    assert "Fix" in out, out
    for n in needles:
        assert n in out, f"{n!r} not in: {out}"
    return out


def _ok(command: str, cfg: Path, *needles: str) -> str:
    result = _run(command, cfg)
    out = result.output
    assert result.exit_code == 0, out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, f"{n!r} not in: {out}"
    return out


def _manifest(data: Path) -> pd.DataFrame:
    return pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)


def _write_manifest(data: Path, df: pd.DataFrame) -> None:
    df.to_csv(data / "manifest.csv", index=False)


def _png(path: Path, pixels: np.ndarray, *, compress: int = 6) -> None:
    Image.fromarray(pixels.astype(np.uint8)).save(path, format="PNG", compress_level=compress)


def _stored(cfg: Path, case: str, modality: str = "cxr") -> np.ndarray:
    """The decoded array a run would train on for ``case`` (read through the disk cache)."""
    store = prepare(fusiondx.load_config(cfg)).store
    return np.asarray(store.inputs[modality][""][list(store.ids).index(case)])


# ---------------------------------------------------------------------------------------------
# 4. The disk cache sees changed input files.
# ---------------------------------------------------------------------------------------------


def test_disk_cache_sees_truncated_png(data: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, data, [IMAGE], cache="disk", cache_dir=str(tmp_path / "cache"))
    _ok("validate", cfg, "are valid")
    png = data / "images" / "case_00005.png"
    png.write_bytes(png.read_bytes()[:40])  # what a failed copy leaves behind
    before = _digest(data)
    for command in ("validate", "fit"):
        out = _error(command, cfg, "case_00005", "case_00005.png", "cannot be decoded")
        assert "are valid" not in out
    assert _digest(data) == before


def test_disk_cache_sees_same_size_png_with_new_mtime(data: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, data, [IMAGE], cache="disk", cache_dir=str(tmp_path / "cache"))
    png = data / "images" / "case_00007.png"
    rng = np.random.default_rng(0)
    _png(png, rng.integers(0, 255, (16, 16)), compress=0)  # uncompressed: size fixed by the shape
    _ok("validate", cfg, "are valid")
    _ok("fit", cfg)
    old = _stored(cfg, "case_00007")
    size, mtime = png.stat().st_size, png.stat().st_mtime_ns
    _png(png, 255 - rng.integers(0, 255, (16, 16)), compress=0)
    os.utime(png, ns=(mtime + 5_000_000_000, mtime + 5_000_000_000))
    assert png.stat().st_size == size
    before = _digest(data)
    _ok("validate", cfg, "are valid")
    _ok("fit", cfg)
    new = _stored(cfg, "case_00007")
    assert not np.allclose(old, new), "the cache served the old pixels"
    assert _digest(data) == before


def test_disk_cache_sees_same_size_same_mtime_change(data: Path, tmp_path: Path) -> None:
    """A copy tool that keeps the timestamp: the content hash of a small file still tells."""
    cfg = _config(tmp_path, data, [IMAGE], cache="disk", cache_dir=str(tmp_path / "cache"))
    png = data / "images" / "case_00008.png"
    rng = np.random.default_rng(1)
    _png(png, rng.integers(0, 255, (16, 16)), compress=0)
    _ok("validate", cfg)
    old = _stored(cfg, "case_00008")
    stat = png.stat()
    _png(png, 255 - rng.integers(0, 255, (16, 16)), compress=0)
    os.utime(png, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (png.stat().st_size, png.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    _ok("validate", cfg)
    assert not np.allclose(old, _stored(cfg, "case_00008"))


def test_disk_cache_sees_changed_dicom(data: Path, tmp_path: Path) -> None:
    from fusiondx.datasets._synthetic_io import write_dicom

    df = _manifest(data)
    df.loc[df["case_id"] == "case_00009", "image"] = "images/case_00009.dcm"
    _write_manifest(data, df)
    dcm = data / "images" / "case_00009.dcm"
    ramp = np.linspace(0, 1, 256).reshape(16, 16)
    write_dicom(dcm, ramp, case_id="case_00009", patient_id="p", sex="M", age=50, seed=0)
    cfg = _config(tmp_path, data, [IMAGE], cache="disk", cache_dir=str(tmp_path / "cache"))
    _ok("validate", cfg, "are valid")
    old = _stored(cfg, "case_00009")
    write_dicom(dcm, ramp[::-1], case_id="case_00009", patient_id="p", sex="M", age=50, seed=0)
    os.utime(dcm, ns=(dcm.stat().st_atime_ns, dcm.stat().st_mtime_ns + 3_000_000_000))
    _ok("validate", cfg, "are valid")
    assert not np.allclose(old, _stored(cfg, "case_00009"))
    dcm.write_bytes(dcm.read_bytes()[:300])  # now damaged
    before = _digest(data)
    _error("validate", cfg, "case_00009", "case_00009.dcm", "DICOM")
    assert _digest(data) == before


def test_disk_cache_sees_truncated_wfdb_data_file(data: Path, tmp_path: Path) -> None:
    """The manifest names the .hea; the cache must also follow the .dat the header pulls in."""
    cfg = _config(tmp_path, data, [ECG], cache="disk", cache_dir=str(tmp_path / "cache"))
    _ok("validate", cfg, "are valid")
    dat = data / "signals" / "case_00011.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    before = _digest(data)
    _error("validate", cfg, "case_00011", "case_00011")
    _error("fit", cfg, "case_00011")
    assert _digest(data) == before


# ---------------------------------------------------------------------------------------------
# 5. The lead count is inferred from the majority of records, and the odd one is named.
# ---------------------------------------------------------------------------------------------


def _twelve_lead_first_case(data: Path, cfg: Path) -> str:
    """Make the first training case's record a 12-lead one (the others have 3)."""
    from fusiondx.data.labelling import label_cases
    from fusiondx.datasets._synthetic_ecg import lead_names
    from fusiondx.datasets._synthetic_io import write_wfdb

    lab = label_cases(fusiondx.load_config(cfg))
    case = str(lab.ids[lab.split == "train"].iloc[0])
    for f in (data / "signals").glob(f"{case}.*"):
        f.unlink()
    sig = np.random.default_rng(0).normal(0, 0.3, (12, 1000))
    write_wfdb(data / "signals", case, sig, 100, lead_names(12))
    return case


def test_lead_count_from_majority_names_the_odd_case(data: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, data, [ECG])
    case = _twelve_lead_first_case(data, cfg)
    before = _digest(data)
    out = _error("validate", cfg, case, f"{case}.hea", "12 lead", "majority", "leads:")
    assert "column 'ecg': 1 problem." in out, out  # the odd case only, not the 119 good ones
    out = _error("fit", cfg, case, "12 lead", "majority", "leads:")
    assert "config expects" not in out
    assert _digest(data) == before


def test_declared_leads_still_checked_against_the_config(data: Path, tmp_path: Path) -> None:
    """With `leads:` given, the odd record is measured against the config, as before."""
    ecg = {**ECG, "preprocessing": {**ECG["preprocessing"], "leads": 3}}
    cfg = _config(tmp_path, data, [ecg])
    case = _twelve_lead_first_case(data, cfg)
    before = _digest(data)
    out = _error("validate", cfg, case, "12 lead", "expects 3")
    assert "column 'ecg': 1 problem." in out, out
    assert _digest(data) == before


# ---------------------------------------------------------------------------------------------
# 8. Tiny images blown up to the model's size are said.
# ---------------------------------------------------------------------------------------------


def test_tiny_image_upscaled_is_warned(data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    tiny = ["case_00003", "case_00004"]
    for case in tiny:
        _png(data / "images" / f"{case}.png", rng.integers(0, 255, (3, 3)))
    cfg = _config(tmp_path, data, [IMAGE])
    before = _digest(data)
    for command in ("validate", "fit"):
        out = _ok(command, cfg, "upscaled more than 4x", "2 image", *tiny, "3x3")
        assert out.count("upscaled more than 4x") == 1, out  # once per modality, not per case
    assert _digest(data) == before


def test_image_upscaled_4x_or_less_is_not_warned(data: Path, tmp_path: Path) -> None:
    _png(data / "images" / "case_00003.png", np.full((4, 8), 100))  # exactly 4x and 2x
    cfg = _config(tmp_path, data, [IMAGE])
    out = _ok("validate", cfg, "are valid")
    assert "upscaled more" not in out


# ---------------------------------------------------------------------------------------------
# 9. A report holding only whitespace is a missing report.
# ---------------------------------------------------------------------------------------------


def test_whitespace_report_files_are_missing(data: Path, tmp_path: Path) -> None:
    blank = {"case_00002": " \n\t \r\n", "case_00006": ""}
    (data / "reports").mkdir()
    df = _manifest(data)
    for case, text in blank.items():
        (data / "reports" / f"{case}.txt").write_text(text)
        df.loc[df["case_id"] == case, "report"] = f"reports/{case}.txt"
    _write_manifest(data, df)
    cfg = _config(tmp_path, data, [REPORT, IMAGE])
    before = _digest(data)
    for command in ("validate", "fit"):
        out = _ok(command, cfg, "2 report", "missing", *blank)
        assert out.count("only whitespace") == 1, out
    store = prepare(fusiondx.load_config(cfg)).store
    col = store.modalities.index("report")
    for case in blank:
        assert not store.mask[list(store.ids).index(case), col]
    assert store.mask[:, col].sum() == N_CASES - 2
    assert _digest(data) == before


def test_invisible_text_cell_is_missing(data: Path, tmp_path: Path) -> None:
    """A cell of zero-width spaces is not text: missing, like an empty cell, and said."""
    df = _manifest(data)
    df.loc[df["case_id"] == "case_00010", "report"] = "\u200b\u200b "
    _write_manifest(data, df)
    cfg = _config(tmp_path, data, [REPORT], cache="disk", cache_dir=str(tmp_path / "cache"))
    _ok("validate", cfg, "1 report", "case_00010")
    _ok("fit", cfg, "1 report", "case_00010")  # from the disk cache: still said
    store = prepare(fusiondx.load_config(cfg)).store
    assert not store.mask[list(store.ids).index("case_00010"), 0]


# ---------------------------------------------------------------------------------------------
# 10. Every file a record pulls in stays under the data root.
# ---------------------------------------------------------------------------------------------


def test_wfdb_dat_symlink_outside_root_is_refused(data: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    dat = data / "signals" / "case_00012.dat"
    shutil.copy(dat, outside / "secret.dat")
    dat.unlink()
    dat.symlink_to(outside / "secret.dat")
    cfg = _config(tmp_path, data, [ECG])
    before = _digest(data) | {
        "outside": hashlib.sha256((outside / "secret.dat").read_bytes()).hexdigest()
    }
    for command in ("validate", "fit"):
        _error(command, cfg, "outside the data root", "case_00012.dat", "case_00012", "data.root")
    after = _digest(data) | {
        "outside": hashlib.sha256((outside / "secret.dat").read_bytes()).hexdigest()
    }
    assert after == before


def test_wfdb_header_symlink_outside_root_is_refused(data: Path, tmp_path: Path) -> None:
    """A record named without suffix: its .hea is found next to the name, and confined too."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for suffix in (".hea", ".dat"):
        f = data / "signals" / f"case_00013{suffix}"
        shutil.copy(f, outside / f.name)
        f.unlink()
        f.symlink_to(outside / f.name)
    df = _manifest(data)
    df.loc[df["case_id"] == "case_00013", "ecg"] = "signals/case_00013"
    _write_manifest(data, df)
    cfg = _config(tmp_path, data, [ECG])
    before = _digest(data)
    _error("validate", cfg, "outside the data root", "case_00013", "data.root")
    assert _digest(data) == before


def test_image_symlink_outside_root_is_refused(data: Path, tmp_path: Path) -> None:
    """Images were confined already (the resolved path is checked); kept as a guard."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    png = data / "images" / "case_00014.png"
    shutil.copy(png, outside / png.name)
    png.unlink()
    png.symlink_to(outside / png.name)
    cfg = _config(tmp_path, data, [IMAGE])
    before = _digest(data)
    _error("validate", cfg, "outside the data root", "case_00014", "data.root")
    assert _digest(data) == before


# ---------------------------------------------------------------------------------------------
# 12. A manifest separated by ';' or tabs is recognised, and data.sep reads it.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sep", "shown"), [(";", "';'"), ("\t", "tab")])
def test_other_separator_is_recognised(data: Path, tmp_path: Path, sep: str, shown: str) -> None:
    _manifest(data).to_csv(data / "semi.csv", index=False, sep=sep)
    cfg = _config(tmp_path, data, [IMAGE], manifest="semi.csv")
    before = _digest(data)
    for command in ("validate", "fit"):
        out = _error(command, cfg, "semi.csv", "separated", shown, "data.sep", "case_id")
        assert "problems" not in out  # one paragraph, not one complaint per column
    assert _digest(data) == before


def test_data_sep_reads_a_semicolon_manifest(data: Path, tmp_path: Path) -> None:
    _manifest(data).to_csv(data / "semi.csv", index=False, sep=";")
    cfg = _config(tmp_path, data, [IMAGE], manifest="semi.csv", sep=";")
    _ok("validate", cfg, f"all {N_CASES} cases are valid")


# ---------------------------------------------------------------------------------------------
# 13. A blank patient id is a patient of its own, and said.
# ---------------------------------------------------------------------------------------------


def test_blank_patient_ids_are_each_their_own_patient(data: Path, tmp_path: Path) -> None:
    df = _manifest(data)
    blank = df["case_id"].iloc[::3].tolist()[:40]
    df.loc[df["case_id"].isin(blank), "patient_id"] = ""
    _write_manifest(data, df)
    cfg = _config(tmp_path, data, [IMAGE])
    before = _digest(data)
    for command in ("validate", "fit"):
        out = _ok(command, cfg, "40 cases have no patient_id", "own patient", blank[0])
        assert out.count("no patient_id") == 1, out
    splits = pd.read_csv(tmp_path / "runs" / "bad" / "splits.csv", dtype=str)
    where = splits.set_index("case_id").loc[blank, "split"].value_counts()
    assert set(where.index) == {"train", "val", "test"}, where
    assert where["train"] < 40
    assert _digest(data) == before
