"""Study references and shortcut probes, one per module; importing this package registers them.

Each is a scikit-learn model trained, tuned and scored exactly like the study's neural entries
(see ``_base.py``): the simplest things that could work, so that a study can say when one does.
"""

from __future__ import annotations

from fusiondx.references._base import Reference, metrics_of
from fusiondx.references._table import CaseTable, build_table
from fusiondx.registry import import_modules

import_modules(__name__, __path__)

__all__ = ["CaseTable", "Reference", "build_table", "metrics_of"]
