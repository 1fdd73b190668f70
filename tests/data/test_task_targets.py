"""Targets of localization, segmentation, generation, survival and regression tasks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fusiondx
from fusiondx.data.store import prepare
from fusiondx.errors import ConfigError, DataError
from fusiondx.tasks.generation import decode_texts
from fusiondx.tasks.localization import parse_box


def _config(
    quick_config: dict[str, Any],
    tmp_path: Path,
    tasks: list[dict[str, Any]],
    manifest: Path | None = None,
) -> fusiondx.Config:
    cfg = copy.deepcopy(quick_config)
    cfg["tasks"] = tasks
    if manifest is not None:
        cfg["data"]["manifest"] = str(manifest)
    return fusiondx.load_config(cfg, base_dir=tmp_path)


def _edited(cohort_dir: Path, tmp_path: Path, edit: Any) -> Path:
    """A copy of the cohort manifest, changed by ``edit``, whose paths still resolve."""
    df = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False, na_values=[""])
    edit(df)
    out = cohort_dir / f"edited_{tmp_path.name}.csv"
    df.to_csv(out, index=False)
    return out


def test_boxes_are_fractions_of_the_image_and_empty_cells_are_nan(
    quick_config, cohort_dir, tmp_path
) -> None:
    cfg = _config(
        quick_config, tmp_path, [{"name": "where", "head": "localization", "label": "lesion_box"}]
    )
    prepared = prepare(cfg)
    y = prepared.store.targets["where"]
    df = pd.read_csv(cohort_dir / "manifest.csv")
    ids = list(prepared.store.ids)
    has = df["lesion_box"].notna().to_numpy()
    assert np.isfinite(y[has]).all() and np.isnan(y[~has]).all()
    row = int(np.flatnonzero(has)[0])
    x0, y0, x1, y1 = parse_box(df["lesion_box"].iloc[row])
    assert ids[row] == df["case_id"].iloc[row]
    np.testing.assert_allclose(y[row], [x0 / 32, y0 / 32, x1 / 32, y1 / 32], rtol=1e-6)
    assert prepared.tasks[0].type == "box" and prepared.tasks[0].image == "cxr"


def test_a_box_that_does_not_fit_its_image_names_the_case(
    quick_config, cohort_dir, tmp_path
) -> None:
    def edit(df: pd.DataFrame) -> None:
        row = df.index[df["lesion_box"].notna()][0]
        df.loc[row, "lesion_box"] = "3 4 40 9"  # x1 beyond the 32-pixel image

    manifest = _edited(cohort_dir, tmp_path, edit)
    cfg = _config(
        quick_config,
        tmp_path,
        [{"name": "where", "head": "localization", "label": "lesion_box"}],
        manifest,
    )
    with pytest.raises(DataError, match="does not fit the 32x32 image") as err:
        prepare(cfg)
    assert err.value.case_id and err.value.row and err.value.column == "lesion_box"


def test_masks_follow_the_image_size_and_cases_without_image_are_ignored(
    quick_config, cohort_dir, tmp_path
) -> None:
    cfg = copy.deepcopy(quick_config)
    cfg["modalities"][0]["preprocessing"]["size"] = [16, 16]
    cfg = _config(cfg, tmp_path, [{"name": "seg", "head": "segmentation", "label": "mask"}])
    prepared = prepare(cfg)
    y = prepared.store.targets["seg"]
    df = pd.read_csv(cohort_dir / "manifest.csv")
    assert y.shape == (len(df), 1, 16, 16) and y.dtype == np.uint8
    no_image = df["image"].isna().to_numpy()
    assert (y[no_image] == 255).all()
    lesion = df["mask"].notna().to_numpy()
    assert (y[lesion].reshape(lesion.sum(), -1) == 1).any(axis=1).all()
    assert (y[~lesion & ~no_image] == 0).all()


def test_augmented_images_are_refused_for_boxes(quick_config, tmp_path) -> None:
    cfg = copy.deepcopy(quick_config)
    cfg["modalities"][0]["preprocessing"]["augment"] = {"flip": True}
    cfg = _config(cfg, tmp_path, [{"name": "where", "head": "localization", "label": "lesion_box"}])
    with pytest.raises(ConfigError, match="augment"):
        prepare(cfg)


def test_report_text_becomes_word_ids_and_back(quick_config, cohort_dir, tmp_path) -> None:
    cfg = _config(
        quick_config,
        tmp_path,
        [
            {
                "name": "findings",
                "head": "generation",
                "label": "findings_text",
                "text": {"max_length": 40},
            }
        ],
    )
    prepared = prepare(cfg)
    info = prepared.tasks[0]
    y = prepared.store.targets["findings"]
    assert y.shape[1] == 40 and (y[:, 0] == 2).all()  # every case starts with [BOS]
    df = pd.read_csv(cohort_dir / "manifest.csv")
    text = decode_texts(info, y[:1])[0]
    words = df["findings_text"].iloc[0].lower().replace(".", " .").split()
    assert text.split() == words


def test_survival_needs_positive_times_and_0_1_events(quick_config, cohort_dir, tmp_path) -> None:
    task = [{"name": "outcome", "head": "survival", "label": ["time_to_event", "event"]}]
    manifest = _edited(
        cohort_dir, tmp_path, lambda df: df.__setitem__("event", df["event"].replace("1", "yes?"))
    )
    with pytest.raises(DataError, match="not 0 or 1") as err:
        prepare(_config(quick_config, tmp_path, task, manifest))
    assert err.value.column == "event" and err.value.case_id

    manifest = _edited(cohort_dir, tmp_path, lambda df: df.__setitem__("time_to_event", "-3"))
    with pytest.raises(DataError, match="not a positive number"):
        prepare(_config(quick_config, tmp_path, task, manifest))

    with pytest.raises(ConfigError, match="time column, event column"):
        prepare(
            _config(quick_config, tmp_path, [{"name": "o", "head": "survival", "label": "event"}])
        )


def test_regression_targets_keep_empty_cells_as_missing(quick_config, cohort_dir, tmp_path) -> None:
    prepared = prepare(
        _config(quick_config, tmp_path, [{"name": "crp", "head": "regression", "label": "wbc"}])
    )
    y = prepared.store.targets["crp"]
    df = pd.read_csv(cohort_dir / "manifest.csv")
    np.testing.assert_array_equal(np.isnan(y), df["wbc"].isna().to_numpy())
    assert prepared.tasks[0].state["target_std"] > 0

    manifest = _edited(
        cohort_dir, tmp_path, lambda df: df.__setitem__("wbc", df["wbc"].fillna("high"))
    )
    with pytest.raises(DataError, match="'high' is not a number"):
        prepare(
            _config(
                quick_config,
                tmp_path,
                [{"name": "crp", "head": "regression", "label": "wbc"}],
                manifest,
            )
        )


def test_late_fusion_cannot_draw_boxes(quick_config, tmp_path) -> None:
    from fusiondx.models.build import check_parts

    cfg = copy.deepcopy(quick_config)
    cfg["fusion"]["name"] = "late_average"
    cfg = _config(cfg, tmp_path, [{"name": "where", "head": "localization", "label": "lesion_box"}])
    with pytest.raises(ConfigError, match="late"):
        check_parts(cfg)


def test_multilabel_with_a_list_of_one_column_reads_it_as_0_1() -> None:
    # `label: [NORM]` means one 0/1 column per class, like a longer list; only a bare column
    # name holds class names split by a separator.
    from fusiondx.config import TaskConfig
    from fusiondx.data.labels import encode_targets
    from fusiondx.tasks import infer_task

    df = pd.DataFrame({"NORM": [1, 0, 1], "findings": ["a;b", "none", "b"]})
    ids = pd.Series(["c1", "c2", "c3"])
    one = infer_task(TaskConfig(name="t", label=["NORM"], type="multilabel"), df)
    assert one.classes == ("NORM",) and one.label_separator is None
    np.testing.assert_array_equal(encode_targets(one, df, ids)[:, 0], [1, 0, 1])
    sep = infer_task(TaskConfig(name="u", label="findings", type="multilabel"), df)
    assert sep.classes == ("a", "b")
    np.testing.assert_array_equal(encode_targets(sep, df, ids), [[1, 1], [0, 0], [0, 1]])
