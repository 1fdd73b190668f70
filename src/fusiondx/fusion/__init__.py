"""Fusion strategies, one per module; importing this package registers every one of them."""

from __future__ import annotations

import importlib
import pkgutil

from fusiondx.fusion._base import Fusion

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Fusion"]
