"""Records constructor arguments so that every part can be rebuilt from ``get_config()``."""

from __future__ import annotations

import functools
import inspect
from typing import Any


class Configurable:
    """Mixin: ``obj.get_config()`` returns the keyword arguments ``obj`` was built with.

    ``type(obj)(**obj.get_config())`` builds an identical (untrained) object. Only the arguments
    of the most derived constructor are kept, so subclasses calling ``super().__init__`` with
    other values do not overwrite them.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__dict__["__init__"]
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self: Any, *args: Any, **kw: Any) -> None:
            if "_fdx_config" not in self.__dict__:
                bound = sig.bind(self, *args, **kw)
                bound.apply_defaults()
                cfg = dict(bound.arguments)
                cfg.pop("self")
                object.__setattr__(self, "_fdx_config", cfg)
            init(self, *args, **kw)

        cls.__init__ = wrapped  # type: ignore[method-assign]

    def get_config(self) -> dict[str, Any]:
        return dict(self.__dict__.get("_fdx_config", {}))
