"""`fusiondx prepare`: public datasets in their official layout -> manifest + config.

Each adapter lives in its own module and is imported only when used. Options are checked
against the chosen adapter so that e.g. ``--hours`` given for PTB-XL is an error, not ignored.

Example:
    >>> from fusiondx.datasets.prepare import prepare_dataset
    >>> prepare_dataset("ptbxl", "../shared/data/ptbxl500", "../prepared/ptbxl")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from fusiondx.datasets._adapter import PreparedDataset
from fusiondx.errors import ConfigError, did_you_mean

#: dataset name -> (module, function, one-line description)
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "ptbxl": ("fusiondx.datasets.ptbxl", "prepare_ptbxl",
              "PTB-XL 12-lead ECGs + metadata + report; 5 diagnostic superclasses (or rhythm/form)"),
    "nih_cxr": ("fusiondx.datasets.nih_cxr", "prepare_nih_cxr",
                "NIH ChestX-ray14 images + demographics; abnormal vs No Finding (or 14 findings)"),
    "mimic_iv": ("fusiondx.datasets.mimic_iv", "prepare_mimic_iv",
                 "MIMIC-IV admissions: first-day labs series + admission data + earlier ICD codes; death"),
    "medmnist": ("fusiondx.datasets.medmnist", "prepare_medmnist",
                 "MedMNIST 2D .npz -> PNGs; binary, multiclass or multilabel from the label shape"),
}
ALIASES = {"ptb-xl": "ptbxl", "ptb_xl": "ptbxl", "nih": "nih_cxr", "chestxray14": "nih_cxr",
           "chestx-ray14": "nih_cxr", "nih-cxr": "nih_cxr", "mimic": "mimic_iv", "mimic-iv": "mimic_iv",
           "mimiciv": "mimic_iv", "mimic_iv_demo": "mimic_iv", "pneumoniamnist": "medmnist"}


def dataset_name(name: str) -> str:
    """The adapter's name for ``name`` (aliases and case accepted)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in ADAPTERS:
        raise ConfigError(f"No adapter for dataset '{name}'.{did_you_mean(key, [*ADAPTERS, *ALIASES])}",
                          fix=f"use one of: {', '.join(ADAPTERS)}")
    return key


def options_of(dataset: str) -> list[str]:
    """Keyword options the adapter takes (besides path, out and progress)."""
    fn = _function(dataset_name(dataset))
    return [p for p in inspect.signature(fn).parameters if p not in ("root", "path", "out", "progress")]


def prepare_dataset(dataset: str, path: str | Path, out: str | Path, *, progress: bool = False,
                    **options: Any) -> PreparedDataset:
    """Run the adapter of ``dataset`` on ``path`` and write manifest, config and skipped.csv to ``out``.

    Args:
        dataset: ptbxl, nih_cxr, mimic_iv or medmnist (or an alias such as ``nih``, ``mimic``).
        path: the dataset's folder as downloaded (MedMNIST: the .npz or its folder).
        out: output folder, or the manifest's path (``.csv``).
        progress: show progress bars.
        **options: the adapter's own options (see :func:`options_of`); None values are ignored.

    Raises:
        ConfigError: unknown dataset, or an option the adapter does not take.
        DataError: the folder does not have the dataset's layout.
    """
    name = dataset_name(dataset)
    allowed = options_of(name)
    given = {k: v for k, v in options.items() if v is not None}
    wrong = [k for k in given if k not in allowed]
    if wrong:
        shown = ", ".join("--" + k.replace("_", "-") for k in wrong)
        takes = ", ".join("--" + a.replace("_", "-") for a in allowed) or "no options"
        raise ConfigError(f"{shown} does not apply to {name}.", fix=f"{name} takes: {takes}")
    return _function(name)(path, out, progress=progress, **given)


def _function(name: str) -> Any:
    module, fn, _ = ADAPTERS[name]
    return getattr(importlib.import_module(module), fn)
