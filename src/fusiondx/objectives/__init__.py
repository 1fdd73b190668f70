"""Self-supervised pretraining objectives, one per module; importing this package registers them.

Used by ``fusiondx pretrain`` (:mod:`fusiondx.engine.pretrain`): every objective reads the
modality embeddings of a batch (and, for reconstruction, its inputs) and returns one loss.
"""

from __future__ import annotations

from fusiondx.objectives._base import Objective
from fusiondx.registry import import_modules

import_modules(__name__, __path__)

__all__ = ["Objective"]
