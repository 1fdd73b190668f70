"""Public datasets: one adapter per module, and the built-in synthetic cohort.

An adapter reads a public dataset in its official layout and writes a manifest, a ready-to-run
config and ``skipped.csv`` (see ``_adapter.py``); it registers with ``@register_adapter``, and
`fusiondx prepare` builds its command-line options from its signature. Importing this package
registers every adapter; ``synthetic`` (the built-in cohort generator) and ``prepare`` (the
front end) are public modules but not adapters.
"""

from __future__ import annotations

from fusiondx.registry import import_modules

NOT_ADAPTERS = ("prepare", "synthetic")

import_modules(__name__, __path__, skip=NOT_ADAPTERS)
