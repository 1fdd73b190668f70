"""`fusiondx serve`: a trained run behind FastAPI and ONNX Runtime, with a page for clinicians.

- :mod:`~fusiondx.serving.service`: the run loaded once per worker (config, preprocessing,
  post-hoc layer, ONNX Runtime session) answering decoded cases;
- :mod:`~fusiondx.serving.formats` / :mod:`~fusiondx.serving.cases`: uploads checked by content and
  written under server-chosen names, then decoded by the run's own preprocessing;
- :mod:`~fusiondx.serving.app`: the routes, size limit, token, CORS and error handling;
- :mod:`~fusiondx.serving.card`: the model card (``GET /model``, ``MODEL_CARD.md``);
- :mod:`~fusiondx.serving.server`: uvicorn with N workers.

Needs ``pip install 'fusiondx[serve]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "model_card", "serve"]


def __getattr__(name: str) -> Any:
    # FastAPI is an extra: importing fusiondx.serving must not need it until it is used.
    if name == "create_app":
        from fusiondx.serving.app import create_app

        return create_app
    if name == "serve":
        from fusiondx.serving.server import serve

        return serve
    if name == "model_card":
        from fusiondx.serving.card import model_card

        return model_card
    raise AttributeError(name)
