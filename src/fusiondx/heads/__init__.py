"""Task heads, one per module; importing this package registers every one of them."""

from __future__ import annotations

from fusiondx.heads._base import Head, HeadContext
from fusiondx.registry import import_modules

import_modules(__name__, __path__)

__all__ = ["Head", "HeadContext"]
