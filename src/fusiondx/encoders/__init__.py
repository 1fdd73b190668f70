"""Modality encoders: one modality's tensor -> an embedding (B, D) and, where tagged, tokens.

One encoder per module; importing this package registers every one of them
(``fusiondx list encoders`` shows them).
"""

from __future__ import annotations

from fusiondx.encoders._base import Encoder
from fusiondx.registry import import_modules

import_modules(__name__, __path__)

__all__ = ["Encoder"]
