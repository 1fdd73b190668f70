"""Study references and shortcut probes, one per module; importing this package registers them.

Each is a scikit-learn model trained, tuned and scored exactly like the study's neural entries
(see ``_base.py``): the simplest things that could work, so that a study can say when one does.
"""

from __future__ import annotations

import importlib
import pkgutil

from fusiondx.references._base import Reference

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Reference"]
