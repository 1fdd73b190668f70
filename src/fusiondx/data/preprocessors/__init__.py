"""One preprocessor per modality kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusiondx.data.preprocessors.base import Preprocessor
from fusiondx.data.preprocessors.image import ImagePreprocessor
from fusiondx.data.preprocessors.signal import SignalPreprocessor
from fusiondx.data.preprocessors.tabular import TabularPreprocessor
from fusiondx.data.preprocessors.text import TextPreprocessor

_BY_KIND: dict[str, type[Preprocessor]] = {
    "image": ImagePreprocessor,
    "signal": SignalPreprocessor,
    "text": TextPreprocessor,
    "tabular": TabularPreprocessor,
}


def make_preprocessor(cfg: Any, root: Path) -> Preprocessor:
    return _BY_KIND[cfg.kind](cfg, root)


__all__ = [
    "Preprocessor",
    "make_preprocessor",
    "ImagePreprocessor",
    "SignalPreprocessor",
    "TabularPreprocessor",
    "TextPreprocessor",
]
