"""Federated training across sites with Flower (the ``federated`` extra): ``federate``.

Layers: :mod:`.sites` (the manifest split into sites), :mod:`.site` (a site's cases, model and
local training by Lightning), :mod:`.flower` (Flower's client, strategies, server loop),
:mod:`.client` (a site's client process), :mod:`.run` (``federate``), :mod:`.report` (tables).
"""

from __future__ import annotations

import os
from typing import Any

# Flower reports usage to its makers unless told not to, and reads the switch once, when it is
# first imported; nothing FusionDx runs may reach outside (the site processes inherit it).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")


def federate(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """See :func:`fusiondx.federated.run.federate` (imported on use: Flower is optional)."""
    from fusiondx.federated.run import federate as _federate

    return _federate(*args, **kwargs)


__all__ = ["federate"]
