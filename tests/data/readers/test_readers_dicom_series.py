"""DICOM series folders: slices written with pydicom, stacked in anatomical order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import generate_uid

from fusiondx.data.preprocessors.image import preprocess_image
from fusiondx.data.readers import image_files, read_image
from fusiondx.data.readers.image.dicom import write_dicom_file
from fusiondx.errors import DataError

AXIAL = (1, 0, 0, 0, 1, 0)


def _series(
    folder: Path,
    zs: list[float],
    *,
    names: list[str] | None = None,
    orientation: tuple[float, ...] | None = AXIAL,
    shape: tuple[int, int] = (4, 5),
    instance: list[int] | None = None,
    seed: int = 0,
) -> dict[float, np.ndarray]:
    """Write one slice per z (file names in the given order); return physical slices by z."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    uid = generate_uid()
    row, col = (
        np.array((orientation or AXIAL)[:3], float),
        np.array((orientation or AXIAL)[3:], float),
    )
    normal = np.cross(row, col)
    out = {}
    for i, z in enumerate(zs):
        stored = rng.integers(0, 4096, shape).astype(np.uint16)
        slope = 1.0 + i  # a rescale of its own per slice
        write_dicom_file(
            folder / (names[i] if names else f"s{i}.dcm"),
            stored,
            slope=slope,
            intercept=-1024.0,
            series_uid=uid,
            position=None if orientation is None else tuple(normal * z + [3.0, -2.0, 0.0]),
            orientation=orientation,
            instance=None if instance is None else instance[i],
        )
        out[z] = stored.astype(np.float32) * slope - 1024.0
    return out


def _msg(ei: pytest.ExceptionInfo[DataError], *paths: Path) -> str:
    msg = str(ei.value)
    for p in paths:
        assert str(p) in msg, msg
    assert "Fix:" in msg, msg
    return msg


def test_slices_sorted_along_an_oblique_normal_with_rescale(tmp_path: Path) -> None:
    oblique = (1, 0, 0, 0, np.cos(0.4), np.sin(0.4))
    slices = _series(
        tmp_path / "ct",
        [20.0, -5.0, 7.5, 0.0],
        names=["a.dcm", "b.dcm", "c", "d.dicom"],
        orientation=oblique,
    )
    (tmp_path / "ct" / "notes.json").write_text("{}")  # side files are left alone
    (tmp_path / "ct" / ".DS_Store").write_bytes(b"\x00")
    rec = read_image(tmp_path / "ct")
    assert rec.spatial_dims == 3 and rec.array.shape == (1, 4, 4, 5)
    np.testing.assert_array_equal(rec.array[0], np.stack([slices[z] for z in sorted(slices)]))
    assert rec.meta["slice_order"] == "position" and rec.meta["n_slices"] == 4
    assert rec.meta["window_center"] == 40.0
    assert rec.path == tmp_path / "ct"
    assert sorted(f.name for f in image_files(tmp_path / "ct")) == [
        "a.dcm",
        "b.dcm",
        "c",
        "d.dicom",
    ]
    out = preprocess_image(rec, size=(2, 8, 8), window="header")
    assert out.shape == (1, 2, 8, 8) and np.isfinite(out).all()


def test_instance_number_then_file_name_as_fallbacks(tmp_path: Path) -> None:
    slices = _series(
        tmp_path / "inst",
        [0.0, 1.0, 2.0],
        names=["x.dcm", "y.dcm", "z.dcm"],
        orientation=None,
        instance=[3, 1, 2],
    )
    rec = read_image(tmp_path / "inst")
    assert rec.meta["slice_order"] == "instance"
    np.testing.assert_array_equal(rec.array[0], np.stack([slices[1.0], slices[2.0], slices[0.0]]))

    named = _series(tmp_path / "name", [0.0, 1.0], names=["2.dcm", "1.dcm"], orientation=None)
    rec = read_image(tmp_path / "name")
    assert rec.meta["slice_order"] == "name"
    np.testing.assert_array_equal(rec.array[0], np.stack([named[1.0], named[0.0]]))


def test_inconsistent_slice_shape_names_folder_and_slice(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    _series(folder, [0.0, 1.0, 2.0])
    write_dicom_file(
        folder / "s1.dcm",
        np.zeros((6, 6), np.uint16),
        position=(3.0, -2.0, 1.0),
        orientation=AXIAL,
        series_uid=None,
    )
    with pytest.raises(DataError) as ei:
        read_image(folder)
    # s1 now also belongs to another series: either complaint must name the folder and s1.
    _msg(ei, folder, folder / "s1.dcm")

    same = tmp_path / "same_series"
    _series(same, [0.0, 1.0, 2.0], shape=(4, 5))
    _series(same / "extra", [3.0], shape=(6, 6))
    shutil.move(same / "extra" / "s0.dcm", same / "s9.dcm")
    import pydicom

    uid = pydicom.dcmread(same / "s0.dcm").SeriesInstanceUID
    ds = pydicom.dcmread(same / "s9.dcm")
    ds.SeriesInstanceUID = uid
    ds.save_as(same / "s9.dcm")
    with pytest.raises(DataError) as ei:
        read_image(same)
    msg = _msg(ei, same, same / "s9.dcm")
    assert "(6, 6)" in msg and "(4, 5)" in msg


def test_folder_without_dicom_mixed_series_and_duplicates(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("scan notes")
    with pytest.raises(DataError) as ei:
        read_image(empty)
    assert "no DICOM" in _msg(ei, empty) and "README.txt" in str(ei.value)

    two = tmp_path / "two"
    _series(two, [0.0, 1.0])
    _series(two / "other", [2.0], seed=1)
    shutil.move(two / "other" / "s0.dcm", two / "t0.dcm")
    with pytest.raises(DataError) as ei:
        read_image(two)
    assert "mixes DICOM series" in _msg(ei, two, two / "t0.dcm")

    dup = tmp_path / "dup"
    _series(dup, [0.0, 1.0, 1.0])
    with pytest.raises(DataError) as ei:
        read_image(dup)
    assert "same position" in _msg(ei, dup)


def test_damaged_slice_and_multiframe_slice_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "ct"
    _series(folder, [0.0, 1.0, 2.0])
    (folder / "s2.dcm").write_bytes((folder / "s2.dcm").read_bytes()[:-30])
    with pytest.raises(DataError) as ei:
        read_image(folder)
    assert "slice 's2.dcm'" in _msg(ei, folder / "s2.dcm")

    import pydicom

    multi = tmp_path / "multi"
    _series(multi, [0.0, 1.0])
    ds = pydicom.dcmread(multi / "s1.dcm")
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(multi / "s1.dcm")
    with pytest.raises(DataError) as ei:
        read_image(multi)
    assert "2 frames" in _msg(ei, multi / "s1.dcm")


def test_slice_symlinked_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _series(root / "ct", [0.0, 1.0])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(root / "ct" / "s1.dcm", outside / "s1.dcm")
    (root / "ct" / "s1.dcm").symlink_to(outside / "s1.dcm")
    assert read_image(root / "ct").array.shape[1] == 2  # without a root nothing is checked
    with pytest.raises(DataError) as ei:
        read_image(root / "ct", root=root)
    msg = _msg(ei, root / "ct")
    assert "outside the data root" in msg and "s1.dcm" in msg


def test_a_mask_given_as_a_series_is_confined_to_the_data_root(tmp_path: Path) -> None:
    """Task labels drawn on images (masks) open their files the way inputs do: every slice a
    series pulls in stays under the data root."""
    from fusiondx.config import load_config
    from fusiondx.data.labels import label_source
    from fusiondx.data.readers.image.dicom_series import DicomSeriesReader

    root = tmp_path / "root"
    root.mkdir()
    example = DicomSeriesReader.write_example(root, np.random.default_rng(0))
    cfg = load_config(
        {
            "name": "t",
            "data": {"manifest": str(root / "m.csv"), "root": str(root)},
            "modalities": [{"name": "labs", "kind": "tabular", "columns": ["age"]}],
            "tasks": [{"name": "lesion", "head": "segmentation", "label": "mask"}],
        }
    )
    open_image = label_source(pd.DataFrame({"mask": ["series"]}), None, cfg).open_image
    assert open_image is not None
    array, _ = open_image("series", "mask", "c1", 2)
    np.testing.assert_allclose(array, example.expected, rtol=1e-5)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(example.path / "a.dcm", outside / "a.dcm")
    (example.path / "a.dcm").symlink_to(outside / "a.dcm")
    with pytest.raises(DataError, match="outside the data root"):
        open_image("series", "mask", "c1", 2)
