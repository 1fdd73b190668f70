"""FHIR R4/R4B (bundles or bulk-export NDJSON) + a cohort file -> a FusionDx manifest and config.

What a case is, its label, the window of each modality and the codes of the tabular features
come from the cohort file (:mod:`fusiondx.datasets._cohort_spec`). Read from the resources:

- ``Patient``: age at the index time (from ``birthDate``) and sex (``gender``);
- ``Encounter``: the case (``case: encounter``) and its index time (``period.start``);
- ``Condition`` codes (SNOMED CT, ICD-10, ...) or an ``Observation`` value rule: the label;
- ``Observation.valueQuantity`` / ``valueCodeableConcept``: tabular features, the last value in
  the window, converted to the cohort file's UCUM unit;
- ``Observation.valueSampledData`` (one with ``dimensions`` = leads, or one component per lead):
  a signal, decoded (``origin + factor * data``) into ``(leads, samples)`` and written as
  ``signals/<case>.npy``;
- ``DiagnosticReport.conclusion`` / ``presentedForm`` and ``DocumentReference`` text attachments:
  the text;
- ``Media`` (``content.url`` under ``--image-root``, or a ``Binary`` / inline data) and
  ``ImagingStudy`` (``<study uid>/<series uid>/<instance uid>.dcm`` under ``--image-root``):
  the image, linked or copied into ``images/`` so the prepared folder is the data root.

Every resource that cannot be used is in ``skipped.csv`` with the reason.

Example:
    >>> prepare_fhir("fhir/", "prepared/", cohort="cohort.yaml", image_root="fhir/files")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from fusiondx.datasets._adapter import PreparedDataset, Skipped, output_paths
from fusiondx.datasets._cohort_build import build_rows, clean_facts
from fusiondx.datasets._cohort_output import write_cohort
from fusiondx.datasets._cohort_spec import load_cohort, system_url
from fusiondx.datasets._fhir_read import read_resources, to_facts
from fusiondx.errors import DataError
from fusiondx.registry import register_adapter

ABOUT = ["A cohort read from FHIR R4B resources (validated with fhir.resources)."]


@register_adapter(
    "fhir",
    aliases=("fhir-r4", "fhir_r4"),
    example="fhir_example/fhir --cohort fhir_example/cohort.yaml --image-root fhir_example/files "
    "--out prepared/fhir",
)
def prepare_fhir(
    path: str | Path,
    out: str | Path,
    *,
    cohort: str | None = None,
    image_root: str | None = None,
    progress: bool = False,
) -> PreparedDataset:
    """FHIR bundles / bulk NDJSON + a cohort file: labels, labs, ECGs, reports and images.

    Args:
        path: a folder of FHIR bundles (``*.json``) or bulk-export files (``*.ndjson``), or one file.
        out: output folder, or the manifest's path (``.csv``).
        cohort: the cohort file (YAML): what a case is, the label, windows, codes
            (docs/interoperability.md).
        image_root: the folder image references (Media.content.url, ImagingStudy UIDs) are
            resolved under; a reference leaving it is skipped.
        progress: accepted for symmetry with the other adapters.
    """
    if cohort is None:
        raise DataError(
            "prepare fhir needs a cohort file.",
            fix="pass --cohort cohort.yaml (see docs/interoperability.md)",
        )
    spec = load_cohort(cohort)
    root = Path(path).expanduser().resolve()
    paths = output_paths(out, "fhir", inputs=root if root.is_dir() else None)
    skipped = Skipped()
    resources, full_urls = read_resources(root, skipped)
    src, binaries = to_facts(resources, full_urls, skipped)

    def key(item: Any) -> str | None:
        code = getattr(item, "code", None)
        return f"{system_url(item.system)}|{code}" if code else None

    label_keys = {f"{c.url}|{c.code}" for c in spec.label.conditions}
    src.facts = clean_facts(src, spec, key, skipped)
    decoder = _Decoder(
        paths.folder, Path(image_root).expanduser().resolve() if image_root else None, binaries
    )
    frame = build_rows(src, spec, key, label_keys, decoder, skipped)
    notes = [f"{len(resources)} valid resources read from {root}"]
    return write_cohort(
        "fhir", frame, spec, paths, skipped, signal=decoder.signal_prep(), about=ABOUT, notes=notes
    )


class _Decoder:
    """Writes signals as .npy and brings images into the output folder, checking as it goes."""

    def __init__(
        self, out: Path, image_root: Path | None, binaries: dict[str, dict[str, Any]]
    ) -> None:
        self.out, self.image_root, self.binaries = out, image_root, binaries
        self.period: float | None = None
        self.lengths: list[int] = []
        self.leads: int | None = None

    def __call__(self, kind: str, fact: pd.Series, case_id: str) -> str:
        return (
            self.signal(fact["payload"], case_id)
            if kind == "signal"
            else self.image(fact["payload"], case_id)
        )

    def signal(self, leads: list[dict[str, Any]], case_id: str) -> str:
        arrays, period = [], None
        for sd in leads:
            arr, p = decode_sampled_data(sd)
            if period is not None and p != period:
                raise DataError(f"its leads have different periods ({period} and {p} ms)")
            arrays.append(arr)
            period = p
        if len({a.shape[1] for a in arrays}) > 1:
            raise DataError("its leads have different numbers of samples")
        signal = np.concatenate(arrays, axis=0).astype(np.float32)
        if self.period is not None and period != self.period:
            raise DataError(
                f"sampling period {period} ms differs from the {self.period} ms of the cohort's other "
                "signals (one .npy rate per cohort)"
            )
        if self.leads is not None and signal.shape[0] != self.leads:
            raise DataError(
                f"{signal.shape[0]} leads, the cohort's other signals have {self.leads}"
            )
        self.period, self.leads = period, signal.shape[0]
        self.lengths.append(signal.shape[1])
        rel = f"signals/{case_id}.npy"
        (self.out / "signals").mkdir(exist_ok=True)
        np.save(self.out / rel, signal)
        return rel

    def signal_prep(self) -> dict[str, Any] | None:
        if self.period is None:
            return None
        rate = 1000.0 / self.period
        return {
            "source_rate": rate,
            "rate": rate,
            "length": int(np.median(self.lengths)),
            "leads": self.leads,
        }

    def image(self, res: dict[str, Any], case_id: str) -> str:
        if res["resourceType"] == "ImagingStudy":
            src = self._study_file(res)
        else:
            content = res.get("content") or {}
            if content.get("data"):
                return self._write_bytes(content["data"], content.get("contentType"), case_id)
            url = str(content.get("url") or "")
            if url.startswith("Binary/") or "/Binary/" in url:
                bid = url.rsplit("/", 1)[1]
                if bid not in self.binaries:
                    raise DataError(f"it references {url}, which is not in the data")
                b = self.binaries[bid]
                return self._write_bytes(b.get("data") or "", b.get("contentType"), case_id)
            if not url:
                raise DataError("Media without content.url or content.data")
            src = self._under_root(unquote(urlparse(url).path) if url.startswith("file:") else url)
        dest = (
            self.out
            / "images"
            / f"{case_id}{''.join(src.suffixes[-2:]) if src.name.endswith('.gz') else src.suffix}"
        )
        dest.parent.mkdir(exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest)  # no copy where the file system allows
        except OSError:
            shutil.copyfile(src, dest)
        return dest.relative_to(self.out).as_posix()

    def _study_file(self, res: dict[str, Any]) -> Path:
        study = next(
            (
                i["value"].removeprefix("urn:oid:")
                for i in res.get("identifier") or []
                if str(i.get("value", "")).startswith("urn:oid:")
            ),
            None,
        )
        try:
            series = res["series"][0]
            rel = f"{study}/{series['uid']}/{series['instance'][0]['uid']}.dcm"
        except (KeyError, IndexError, TypeError):
            raise DataError("ImagingStudy without a series instance to locate") from None
        if study is None:
            raise DataError("ImagingStudy without a urn:oid: study identifier")
        return self._under_root(rel)

    def _under_root(self, rel: str) -> Path:
        if self.image_root is None:
            raise DataError(f"image file '{rel}' needs --image-root to be found")
        full = (self.image_root / rel).resolve()
        if not full.is_relative_to(self.image_root):
            raise DataError(f"the image path '{rel}' escapes the image root {self.image_root}")
        if not full.is_file():
            raise DataError(f"image file '{rel}' not found under {self.image_root}")
        return full

    def _write_bytes(self, data: str, ctype: str | None, case_id: str) -> str:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise DataError("the image data is not valid base64") from None
        ext = {"application/dicom": ".dcm"}.get(
            str(ctype), mimetypes.guess_extension(str(ctype)) or ""
        )
        if not raw or ext not in (".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"):
            raise DataError(
                f"inline image of type '{ctype}' is empty or not an image format FusionDx reads"
            )
        rel = f"images/{case_id}{ext}"
        (self.out / "images").mkdir(exist_ok=True)
        (self.out / rel).write_bytes(raw)
        return rel


def decode_sampled_data(sd: dict[str, Any]) -> tuple[np.ndarray, float]:
    """FHIR SampledData -> ``(dimensions, samples)`` in the origin's unit, and the period (ms).

    Values are interleaved per time point; ``E``/``L``/``U`` (error, below, above the
    detection limits) become NaN.
    """
    try:
        period = float(sd["period"])
        dims = int(sd["dimensions"])
        factor = float(sd.get("factor", 1.0))
        origin = float((sd.get("origin") or {}).get("value", 0.0))
    except (KeyError, TypeError, ValueError):
        raise DataError("SampledData lacks period, dimensions or a numeric origin/factor") from None
    words = str(sd.get("data") or "").split()
    if not words or period <= 0 or dims < 1 or len(words) % dims:
        raise DataError(
            f"SampledData holds {len(words)} values, not a positive multiple of its {dims} dimensions"
        )
    try:
        raw = np.array(words, dtype=float)  # fast path: numbers only
    except ValueError:
        raw = None
    try:
        if raw is None:
            raw = np.array([np.nan if w in ("E", "L", "U") else float(w) for w in words])
    except ValueError as exc:
        raise DataError(f"SampledData holds a value that is not a number ({exc})") from None
    return (origin + factor * raw).reshape(-1, dims).T, period
