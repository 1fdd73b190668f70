"""Tests of the built-in synthetic cohort (``fusiondx.datasets.synthetic``).

Everything is checked through the files on disk, read with the same libraries a user would use
(pandas, Pillow, pydicom, wfdb, numpy).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import wfdb
from PIL import Image
from pydicom.pixels import apply_modality_lut
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.datasets.synthetic import MANIFEST_COLUMNS, make_cohort, oracle_aurocs, presence_auroc
from fusiondx.errors import ConfigError

FINDINGS = {"opacity", "nodule", "cardiomegaly", "arrhythmia", "st_change"}
LABS = ["crp", "troponin", "bnp", "wbc", "spo2", "heart_rate_vitals"]
PATHS = ["image", "ecg", "mask"]


def _read(manifest: Path) -> pd.DataFrame:
    """Manifest as strings, empty cells kept as ''."""
    return pd.read_csv(manifest, dtype=str, keep_default_na=False)


def _signal(root: Path, rel: str) -> np.ndarray:
    """Signal (leads, samples) from a .hea or .npy path."""
    if rel.endswith(".hea"):
        return wfdb.rdrecord(str(root / rel[: -len(".hea")])).p_signal.T
    return np.load(root / rel)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600-case PNG/WFDB cohort shared by the read-only checks."""
    return make_cohort(tmp_path_factory.mktemp("cohort600"), n_cases=600, seed=0)


@pytest.fixture(scope="module")
def frame(cohort: Path) -> pd.DataFrame:
    return _read(cohort)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = make_cohort(tmp_path / "a", n_cases=60, seed=7)
    b = make_cohort(tmp_path / "b", n_cases=60, seed=7)
    assert a.read_bytes() == b.read_bytes()
    assert (a.parent / "README.md").read_bytes() == (b.parent / "README.md").read_bytes()
    m = _read(a)
    for col in ("image", "mask"):
        for rel in m.loc[m[col] != "", col]:
            assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes(), rel
    for rel in m.loc[m["ecg"] != "", "ecg"]:
        np.testing.assert_array_equal(_signal(a.parent, rel), _signal(b.parent, rel))


def test_different_seed_differs(tmp_path: Path) -> None:
    a = _read(make_cohort(tmp_path / "a", n_cases=60, seed=1))
    b = _read(make_cohort(tmp_path / "b", n_cases=60, seed=2))
    assert not a["report"].equals(b["report"])
    assert not a["crp"].equals(b["crp"])
    both = (a["image"] != "") & (b["image"] != "")
    rel = a.loc[both, "image"].iloc[0]
    pix_a = np.asarray(Image.open(tmp_path / "a" / rel))
    pix_b = np.asarray(Image.open(tmp_path / "b" / rel))
    assert not np.array_equal(pix_a, pix_b)


def test_missing_rate_changes_only_missingness(tmp_path: Path) -> None:
    a = _read(make_cohort(tmp_path / "a", n_cases=40, seed=8, missing_rate=0.1))
    b = _read(make_cohort(tmp_path / "b", n_cases=40, seed=8, missing_rate=0.4))
    both = (a != "") & (b != "")
    assert ((a == b) | ~both).all().all()
    assert both["image"].sum() > 20 and both["ecg"].sum() > 20
    for rel in a.loc[both["image"], "image"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    for rel in a.loc[both["ecg"], "ecg"]:
        np.testing.assert_array_equal(_signal(tmp_path / "a", rel), _signal(tmp_path / "b", rel))


def test_columns_and_values(cohort: Path, frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(MANIFEST_COLUMNS)
    typed = pd.read_csv(cohort)  # default parsing, as a user would
    for col in [*LABS, "time_to_event"]:
        assert pd.api.types.is_float_dtype(typed[col]), col
    assert pd.api.types.is_integer_dtype(typed["age"])
    assert typed["age"].between(18, 96).all()
    assert set(typed["event"]) <= {0, 1}
    assert (typed["time_to_event"] > 0).all()
    assert frame["case_id"].is_unique
    assert frame["case_id"].str.fullmatch(r"case_\d{5}").all()
    assert set(frame["sex"]) == {"F", "M"}
    assert set(frame["site"]) == {"site_A", "site_B", "site_C"}
    assert set(frame["label"]) == {"healthy", "disease"}
    assert set(frame["smoker"]) <= {"never", "former", "current", ""}
    # "none" must survive pandas' default NA parsing (it is lower case on purpose).
    assert (typed["findings"] == "none").sum() == (frame["findings"] == "none").sum() > 0
    prevalence = (frame["label"] == "disease").mean()
    assert 0.3 < prevalence < 0.5


def test_label_subtype_findings_consistent(frame: pd.DataFrame) -> None:
    healthy = frame["label"] == "healthy"
    assert (frame.loc[healthy, "subtype"] == "none").all()
    assert set(frame.loc[~healthy, "subtype"]) == {"pulmonary", "cardiac", "mixed"}
    assert (frame.loc[healthy, "findings"] == "none").all()
    for subtype, findings in zip(frame["subtype"], frame["findings"], strict=True):
        found = set(findings.split(";")) - {"none"}
        assert found <= FINDINGS
        pulm = bool(found & {"opacity", "nodule"})
        card = bool(found & {"cardiomegaly", "arrhythmia", "st_change"})
        assert (pulm, card) == {
            "none": (False, False),
            "pulmonary": (True, False),
            "cardiac": (False, True),
            "mixed": (True, True),
        }[subtype]


def test_paths_exist_and_are_relative(cohort: Path, frame: pd.DataFrame) -> None:
    for col in PATHS:
        for rel in frame.loc[frame[col] != "", col]:
            assert not Path(rel).is_absolute()
            assert (cohort.parent / rel).is_file(), rel
    wfdb_rows = frame["ecg"] != ""
    for rel in frame.loc[wfdb_rows, "ecg"]:
        assert rel.endswith(".hea") and (cohort.parent / rel).with_suffix(".dat").is_file()


def test_empty_cells_only_where_expected(frame: pd.DataFrame) -> None:
    always = [
        "case_id",
        "patient_id",
        "site",
        "sex",
        "age",
        "label",
        "subtype",
        "findings",
        "findings_text",
        "time_to_event",
        "event",
    ]
    assert (frame[always] != "").all().all()
    labs_missing = frame["smoker"] == ""
    # The lab block is blank all together; single NaN values occur only in present blocks.
    assert (frame.loc[labs_missing, LABS] == "").all().all()
    single_nan = (frame.loc[~labs_missing, LABS] == "").to_numpy().mean()
    assert 0.02 < single_nan < 0.09
    lesion = frame["findings"].str.contains("opacity|nodule")
    has_image = frame["image"] != ""
    assert ((frame["mask"] != "") == (has_image & lesion)).all()
    assert ((frame["lesion_box"] != "") == (frame["mask"] != "")).all()


def test_every_case_keeps_a_modality(tmp_path: Path) -> None:
    # At 60 % missingness ~13 % of cases would lose all four without the rescue rule.
    m = _read(make_cohort(tmp_path, n_cases=200, seed=3, missing_rate=0.6))
    present = pd.DataFrame({c: m[c] != "" for c in ["image", "ecg", "report", "smoker"]})
    assert present.any(axis=1).all()
    assert (present.mean() < 0.55).all()


def test_missingness_near_rate(frame: pd.DataFrame) -> None:
    for col in ["image", "ecg", "report", "smoker"]:
        assert abs((frame[col] == "").mean() - 0.1) < 0.04, col


def test_repeat_patients(frame: pd.DataFrame) -> None:
    counts = frame["patient_id"].value_counts()
    assert counts.max() == 2
    assert 0.06 < (counts == 2).mean() < 0.14
    per_patient = frame.groupby("patient_id")[["sex", "site"]].nunique()
    assert (per_patient == 1).all().all()


def test_boxes_inside_image_and_cover_masks(cohort: Path, frame: pd.DataFrame) -> None:
    rows = frame[frame["mask"] != ""]
    assert len(rows) > 50
    for _, row in rows.iterrows():
        image = np.asarray(Image.open(cohort.parent / row["image"]))
        mask = np.asarray(Image.open(cohort.parent / row["mask"]))
        assert mask.dtype == np.uint8 and mask.shape == image.shape == (64, 64)
        assert set(np.unique(mask)) == {0, 255}
        x0, y0, x1, y1 = (int(v) for v in row["lesion_box"].split(" "))
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        ys, xs = np.nonzero(mask)
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_wfdb_records_match_declared_shape(tmp_path: Path) -> None:
    m = _read(
        make_cohort(
            tmp_path,
            n_cases=20,
            seed=4,
            n_leads=5,
            signal_rate=250,
            signal_seconds=4.0,
            missing_rate=0.0,
        )
    )
    for rel in m["ecg"]:
        rec = wfdb.rdrecord(str(tmp_path / rel[: -len(".hea")]))
        assert rec.fs == 250 and rec.n_sig == 5 and rec.sig_len == 1000
        assert rec.sig_name == ["I", "II", "V2", "III", "aVR"]
        assert rec.units == ["mV"] * 5 and rec.fmt == ["16"] * 5
        assert 0.3 < np.abs(rec.p_signal).max() < 10.0  # mV scale, not digital units


def test_npy_matches_wfdb(tmp_path: Path) -> None:
    a = _read(make_cohort(tmp_path / "w", n_cases=30, seed=5, missing_rate=0.0))
    b = _read(
        make_cohort(tmp_path / "n", n_cases=30, seed=5, missing_rate=0.0, signal_format="npy")
    )
    for rel_w, rel_n in zip(a["ecg"], b["ecg"], strict=True):
        arr = np.load(tmp_path / "n" / rel_n)
        assert arr.dtype == np.float32 and arr.shape == (3, 1000)
        # WFDB stores 1 uV steps, so the two agree to half a microvolt.
        np.testing.assert_allclose(_signal(tmp_path / "w", rel_w), arr, atol=6e-4)


def test_dicom_matches_png(tmp_path: Path) -> None:
    png = _read(make_cohort(tmp_path / "p", n_cases=30, seed=6, missing_rate=0.0))
    dcm = _read(
        make_cohort(tmp_path / "d", n_cases=30, seed=6, missing_rate=0.0, image_format="dicom")
    )
    again = make_cohort(tmp_path / "d2", n_cases=30, seed=6, missing_rate=0.0, image_format="dicom")
    for rel_p, rel_d in zip(png["image"], dcm["image"], strict=True):
        ds = pydicom.dcmread(tmp_path / "d" / rel_d)
        assert ds.pixel_array.dtype == np.int16 and ds.pixel_array.shape == (64, 64)
        assert float(ds.WindowWidth) > 0 and "RescaleSlope" in ds
        unit = (apply_modality_lut(ds.pixel_array, ds) + 1000.0) / 2000.0
        ref = np.asarray(Image.open(tmp_path / "p" / rel_p)) / 255.0
        assert np.abs(unit - ref).max() <= 0.5 / 255 + 0.5 / 4000 + 1e-9
        assert (again.parent / rel_d).read_bytes() == (tmp_path / "d" / rel_d).read_bytes()


def test_readme_summarises(cohort: Path, frame: pd.DataFrame) -> None:
    text = (cohort.parent / "README.md").read_text()
    assert "- seed: 0" in text and "- cases: 600" in text
    n_disease = int((frame["label"] == "disease").sum())
    assert f"disease prevalence: {n_disease} (" in text
    n_no_image = int((frame["image"] == "").sum())
    assert f"| image | {600 - n_no_image} (" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_format": "jpeg"},
        {"signal_format": "edf"},
        {"n_leads": 13},
        {"missing_rate": 1.0},
        {"n_cases": 0},
        {"n_sites": 0},
        {"presence_shortcut": 1.0},
        {"presence_shortcut": -0.1},
        {"uninformative": ("ecg", "xray")},
        {"uninformative": "labs,ekg"},
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="Fix:"):
        make_cohort(tmp_path, **kwargs)
    assert not (tmp_path / "manifest.csv").exists()


def test_unknown_uninformative_name_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'ecg'") as err:
        make_cohort(tmp_path, uninformative=["ekg"])
    assert "image, ecg, report, labs" in str(err.value)


def test_no_single_modality_suffices_but_fusion_does(cohort: Path) -> None:
    auroc = oracle_aurocs(cohort)
    singles = {k: v for k, v in auroc.items() if k != "fused"}
    assert all(0.62 < v < 0.86 for v in singles.values()), auroc
    assert auroc["fused"] >= max(singles.values()) + 0.06, auroc


# ----------------------------------------------------------------------------------------------
# The default cohort must not change: these hashes were computed with the generator as it was
# before the opt-in variants (presence_shortcut, uninformative) existed. If they fail after a
# numpy upgrade, first check whether numpy changed a random stream; never just paste new ones.
_PINNED_ARGS = {
    "n_cases": 150,
    "seed": 5,
    "image_size": 24,
    "signal_format": "npy",
    "signal_seconds": 2.0,
    "missing_rate": 0.2,
}
_PINNED_MANIFEST = "f5f43b8f0caee79300e13f44f3c825e43eb0cda260fb9ea36f6071a2f63d2cc7"
_PINNED_README = "7b995001f9b7d767000afb763831aba89a51b56efdd55b85648c3ee0bd8c6e72"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _array_hash(manifest: Path) -> str:
    """One hash over every image, mask and signal array (decoded), in manifest order."""
    m, h = _read(manifest), hashlib.sha256()
    for col in ("image", "mask", "ecg"):
        for rel in m.loc[m[col] != "", col]:
            h.update(rel.encode())
            h.update(
                np.ascontiguousarray(
                    _signal(manifest.parent, rel)
                    if col == "ecg"
                    else np.asarray(Image.open(manifest.parent / rel))
                )
            )
    return h.hexdigest()


def test_default_cohort_is_unchanged(tmp_path: Path) -> None:
    plain = make_cohort(tmp_path / "plain", **_PINNED_ARGS)
    assert _sha(plain) == _PINNED_MANIFEST
    assert _sha(plain.parent / "README.md") == _PINNED_README
    m = _read(plain)
    assert m.loc[0, "case_id"] == "case_00001" and (m["label"] == "disease").sum() == 63
    # Passing the variants' "off" values explicitly changes no file either.
    for k, off in enumerate(
        [
            {"presence_shortcut": 0.0, "uninformative": ()},
            {"site_shift": 0.0},
            {"uninformative": ""},
            {"uninformative": []},
        ]
    ):
        again = make_cohort(tmp_path / f"off{k}", **_PINNED_ARGS, **off)
        assert _sha(again) == _PINNED_MANIFEST, off
        assert _sha(again.parent / "README.md") == _PINNED_README, off
        assert _array_hash(again) == _array_hash(plain), off


def _missing(frame: pd.DataFrame, col: str, disease: bool) -> float:
    rows = frame["label"] == ("disease" if disease else "healthy")
    return float((frame.loc[rows, col] == "").mean())


def test_presence_shortcut_changes_only_missingness(tmp_path: Path) -> None:
    args = {
        "n_cases": 300,
        "seed": 9,
        "image_size": 16,
        "signal_format": "npy",
        "signal_seconds": 2.0,
    }
    a = _read(make_cohort(tmp_path / "a", **args))
    b = _read(make_cohort(tmp_path / "b", **args, presence_shortcut=0.6))
    both = (a != "") & (b != "")
    assert ((a == b) | ~both).all().all()  # every value written in both is the same
    for col in ("image", "ecg"):
        np.testing.assert_array_equal(a[col] == "", b[col] == "")
    for col in ("report", "smoker"):  # smoker blank <=> the lab block is missing
        assert _missing(b, col, disease=False) > 0.18 and _missing(b, col, disease=True) < 0.08
        assert abs(_missing(a, col, False) - _missing(a, col, True)) < 0.08
    for col in ("troponin", "bnp"):  # ordered when heart disease is suspected
        labs = b["smoker"] != ""
        assert _missing(b[labs], col, False) > 2 * _missing(b[labs], col, True)
    text = (tmp_path / "b" / "README.md").read_text()
    assert "- presence_shortcut: 0.6" in text and "among healthy" in text


def test_presence_alone_predicts_the_label_only_with_the_shortcut(
    tmp_path: Path, cohort: Path
) -> None:
    shortcut = make_cohort(
        tmp_path,
        n_cases=800,
        seed=2,
        image_size=16,
        signal_format="npy",
        signal_seconds=2.0,
        presence_shortcut=0.6,
    )
    assert presence_auroc(shortcut) > 0.67
    # Default: missingness ignores the label. (Cross-validated AUROC of a model that can only
    # learn noise scatters around 0.5 and leans below it, hence the wider lower margin.)
    assert 0.38 < presence_auroc(cohort) < 0.58


def test_uninformative_changes_only_the_listed_modalities(tmp_path: Path) -> None:
    args = {
        "n_cases": 60,
        "seed": 4,
        "image_size": 24,
        "signal_format": "npy",
        "signal_seconds": 2.0,
    }
    a = _read(make_cohort(tmp_path / "a", **args))
    b = _read(make_cohort(tmp_path / "b", **args, uninformative=("ecg", "report", "labs")))
    c = _read(make_cohort(tmp_path / "c", **args, uninformative="image"))
    truth = [
        "case_id",
        "patient_id",
        "site",
        "label",
        "subtype",
        "findings",
        "lesion_box",
        "mask",
        "findings_text",
        "time_to_event",
        "event",
    ]
    for other in (b, c):
        pd.testing.assert_frame_equal(a[truth], other[truth])
        for col in ("image", "ecg", "report", "smoker"):  # same missingness pattern
            np.testing.assert_array_equal(a[col] == "", other[col] == "")
    # b: the image is the case's own; ECG, report, labs and (with the labs) age/sex are not.
    pd.testing.assert_frame_equal(a[["image"]], b[["image"]])
    for rel in a.loc[a["image"] != "", "image"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    has = a["report"] != ""
    assert (a.loc[has, "report"] != b.loc[has, "report"]).mean() > 0.9
    assert (a["age"] != b["age"]).mean() > 0.8 and (a["crp"] != b["crp"]).mean() > 0.8
    assert (b.groupby("patient_id")["sex"].nunique() == 1).all()  # one person per patient
    rel = a.loc[a["ecg"] != "", "ecg"].iloc[0]
    assert not np.array_equal(_signal(tmp_path / "a", rel), _signal(tmp_path / "b", rel))
    # c: only the pixels change; mask and box stay the case's own lesion, age/sex its own.
    pd.testing.assert_frame_equal(a.drop(columns="image"), c.drop(columns="image"))
    for rel in a.loc[a["image"] != "", "image"]:
        assert not np.array_equal(
            np.asarray(Image.open(tmp_path / "a" / rel)),
            np.asarray(Image.open(tmp_path / "c" / rel)),
        )
    assert "**Uninformative modalities**: image." in (tmp_path / "c" / "README.md").read_text()


def test_uninformative_modalities_are_at_chance_and_fusion_does_not_help(tmp_path: Path) -> None:
    manifest = make_cohort(
        tmp_path, n_cases=800, seed=0, signal_format="npy", uninformative=("ecg", "report", "labs")
    )
    auroc = oracle_aurocs(manifest)
    for name in ("ecg", "report", "labs"):
        assert 0.38 < auroc[name] < 0.62, auroc
    assert 0.72 < auroc["image"] < 0.88, auroc  # the image keeps its usual level
    # Fusion cannot beat the image; the oracle's fused model pays a little for the noise
    # features and for the ~10 % of cases without an image (see docs/cohort.md).
    assert auroc["image"] - 0.09 < auroc["fused"] < auroc["image"] + 0.02, auroc


def test_cli_variant_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["cohort", "--help"], terminal_width=200).output
    assert "--presence-shortcut 0.6" in help_text and "--uninformative ecg,report,labs" in help_text
    ok = runner.invoke(
        app,
        [
            "cohort",
            str(tmp_path / "c"),
            "--cases",
            "40",
            "--signal-format",
            "npy",
            "--presence-shortcut",
            "0.6",
            "--uninformative",
            "ecg, labs",
        ],
    )
    assert ok.exit_code == 0, ok.output
    text = (tmp_path / "c" / "README.md").read_text()
    assert "- presence_shortcut: 0.6" in text and "- uninformative: ecg, labs" in text
    bad = runner.invoke(app, ["cohort", str(tmp_path / "d"), "--uninformative", "ekg"])
    assert bad.exit_code == 2 and "Did you mean 'ecg'" in bad.output and "Fix:" in bad.output
    bad = runner.invoke(app, ["cohort", str(tmp_path / "d"), "--presence-shortcut", "1.5"])
    assert bad.exit_code == 2 and "presence_shortcut" in bad.output


def test_site_shift_changes_only_the_shifted_sites_acquisition(tmp_path: Path) -> None:
    """site_shift=S: site_A's files are byte for byte those without it; the other sites'
    images, ECGs and report wording change (more at the last site), nothing else does."""
    plain = make_cohort(tmp_path / "plain", n_cases=90, seed=4, image_size=32)
    shifted = make_cohort(tmp_path / "shift", n_cases=90, seed=4, image_size=32, site_shift=1.0)
    a, b = _read(plain), _read(shifted)
    assert [c for c in a.columns if not a[c].equals(b[c])] == ["report"]
    for site, same in (("site_A", True), ("site_C", False)):
        rows = a.index[(a["site"] == site) & (a["image"] != "") & (a["ecg"] != "")]
        assert len(rows) > 3
        for col in ("image", "ecg"):
            files = [
                ((plain.parent / a.loc[i, col]).with_suffix(".dat" if col == "ecg" else ".png"))
                for i in rows
            ]
            equal = [
                f.read_bytes() == (shifted.parent / f.relative_to(plain.parent)).read_bytes()
                for f in files
            ]
            assert all(equal) if same else not any(equal), (site, col)
        written = [i for i in rows if a.loc[i, "report"]]
        reports = a.loc[written, "report"] == b.loc[written, "report"]
        assert reports.all() if same else reports.mean() < 0.1, site
    # Each shifted site has words of its own, used by no unshifted report and no other site.
    words = {
        site: set(re.findall(r"[a-z]+", " ".join(b.loc[b["site"] == site, "report"]).lower()))
        for site in ("site_B", "site_C")
    }
    plain_words = set(re.findall(r"[a-z]+", " ".join(a["report"]).lower()))
    assert {"nil", "shadowing"} <= words["site_B"] - plain_words - words["site_C"]
    assert {"absent", "clouding"} <= words["site_C"] - plain_words - words["site_B"]
    # Contrast: site_C's images are darker in the midtones through the gamma curve.
    i = int(a.index[(a["site"] == "site_C") & (a["image"] != "")][0])
    before = np.asarray(Image.open(plain.parent / a.loc[i, "image"]), dtype=float)
    after = np.asarray(Image.open(shifted.parent / a.loc[i, "image"]), dtype=float)
    assert after.mean() < before.mean() - 5


def test_site_shift_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="site_shift"):
        make_cohort(tmp_path / "x", n_cases=10, site_shift=-0.5)
