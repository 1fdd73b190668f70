"""Registries of pluggable parts: task types, encoders, fusions, heads, study references,
file readers and dataset adapters, built by name.

A part registers itself with a decorator::

    @register_fusion("concat", reference="...")
    class ConcatFusion(Fusion): ...

and is built with ``create_fusion("concat", in_dims=..., out_dim=...)``. The registry drives the
CLI (``fusiondx list``), the docs tables and the common test suites. A part's tags (what it can
do: ``tokens``, ``levels``, ``handles_missing``, ...) are never written at registration: its base
class computes them from the class itself (``part_tags()``), so a tag cannot disagree with the
code. ``aliases=`` keeps old names working; they resolve to the entry, which lists under its name.

Each registry knows the package its parts live in and imports it on first use; the package's
``__init__`` imports every public module in it (:func:`import_modules`), so a new part is one
new file and cannot be missed by forgetting an import line.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from fusiondx.errors import ConfigError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered part: a class, or a function (dataset adapters)."""

    name: str
    cls: type[T]
    meta: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def tags(self) -> frozenset[str]:
        """What the part can do, computed from the class by its ``part_tags()`` (none without one)."""
        part_tags = getattr(self.cls, "part_tags", None)
        return frozenset(part_tags()) if part_tags is not None else frozenset()

    @property
    def summary(self) -> str:
        """First line of the class docstring."""
        doc = inspect.getdoc(self.cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def options(self) -> dict[str, Any]:
        """Keyword-only options of the constructor and their defaults (required ones omitted)."""
        out: dict[str, Any] = {}
        for p in _parameters(self.cls).values():
            if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty:
                out[p.name] = p.default
        return out


def import_modules(package: str, path: Iterable[str], *, skip: Iterable[str] = ()) -> list[str]:
    """Import every public module under ``package`` (sub-packages included): their decorators
    register them. Modules and packages whose name starts with ``_`` are helpers, not parts;
    ``skip`` names public modules that are not parts either (imported only when used).

    Returns:
        The imported modules' names, sorted.
    """
    names, skip = [], set(skip)
    for mod in pkgutil.walk_packages(list(path), prefix=f"{package}."):
        rel = mod.name[len(package) + 1 :]
        if rel not in skip and not any(part.startswith("_") for part in rel.split(".")):
            importlib.import_module(mod.name)
            names.append(mod.name)
    return sorted(names)


class Registry(Generic[T]):
    """A name -> class table for one kind of part, filled by importing ``package`` on first use.

    ``class_meta`` names class attributes copied into every entry's ``meta`` (e.g. an encoder's
    ``kind``), so the registration does not restate them.
    """

    def __init__(
        self, kind: str, package: str | None = None, *, class_meta: tuple[str, ...] = ()
    ) -> None:
        self.kind = kind
        self.package = package
        self.class_meta = class_meta
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = package is None

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before the import: the package's modules call register(), not _load()
        try:
            importlib.import_module(self.package)  # type: ignore[arg-type]
        except BaseException:
            self._loaded = False
            raise

    def register(
        self, name: str, *, aliases: Iterable[str] = (), **meta: Any
    ) -> Callable[[type[T]], type[T]]:
        aliases = tuple(aliases)
        if "tags" in meta:
            raise TypeError(
                f"{self.kind} '{name}': tags are computed from the class (part_tags), not registered"
            )

        def deco(cls: type[T]) -> type[T]:
            for n in (name, *aliases):
                owner = self._entries.get(self._aliases.get(n, n))
                if owner is not None and owner.cls is not cls:
                    raise ValueError(f"{self.kind} name '{n}' is registered twice")
            own = {a: getattr(cls, a) for a in self.class_meta if hasattr(cls, a)}
            self._entries[name] = Entry(name, cls, {**own, **meta}, aliases)
            self._aliases.update(dict.fromkeys(aliases, name))
            cls.registered_name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def get(self, name: str) -> Entry[T]:
        self._load()
        entry = self._entries.get(self._aliases.get(name, name))
        if entry is None:
            known = [*self._entries, *self._aliases]
            raise ConfigError(
                f"There is no {self.kind} named '{name}'.{did_you_mean(name, known)}",
                fix=f"use one of: {', '.join(sorted(self._entries))} "
                f"(see `fusiondx list {self.kind.split()[-1]}s`)",
            )
        return entry

    def create(self, name: str, /, **kwargs: Any) -> T:
        entry = self.get(name)
        check_options(entry.cls, kwargs, what=f"{self.kind} '{name}'")
        return entry.cls(**kwargs)

    def names(self, pattern: str = "*") -> list[str]:
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        return [self._entries[n] for n in self.names(pattern)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def _parameters(part: Any) -> Any:
    """The parameters of a part's constructor (of the function itself for a function)."""
    return inspect.signature(part if inspect.isfunction(part) else part.__init__).parameters


def check_options(cls: Any, kwargs: dict[str, Any], *, what: str) -> None:
    """Raise a ConfigError naming any keyword that ``cls.__init__`` (or function ``cls``) does not take."""
    params = _parameters(cls)
    accepted = {n for n, p in params.items() if n != "self" and p.kind is not p.VAR_POSITIONAL}
    for key in kwargs:
        if key not in accepted:
            shown = sorted(accepted)
            raise ConfigError(
                f"{what} has no option '{key}'.{did_you_mean(key, shown)}",
                fix=f"its options are: {', '.join(shown)}",
            )


ENCODERS: Registry[Any] = Registry("encoder", "fusiondx.encoders", class_meta=("kind", "requires"))
FUSIONS: Registry[Any] = Registry("fusion", "fusiondx.fusion")
HEADS: Registry[Any] = Registry("head", "fusiondx.heads")
REFERENCES: Registry[Any] = Registry("reference", "fusiondx.references")
READERS: Registry[Any] = Registry("reader", "fusiondx.data.readers")
ADAPTERS: Registry[Any] = Registry("dataset adapter", "fusiondx.datasets")
"""Functions ``(path, out, *, <options>, progress=False) -> PreparedDataset`` behind `fusiondx prepare`."""
TASK_TYPES: Registry[Any] = Registry("task type", "fusiondx.tasks")
OBJECTIVES: Registry[Any] = Registry("objective", "fusiondx.objectives")
"""Self-supervised pretraining objectives behind `fusiondx pretrain`."""
ACQUISITIONS: Registry[Any] = Registry("acquisition", "fusiondx.evaluation.acquisition")
"""Uncertainty scores behind `fusiondx suggest`: functions ``(probs, *, multilabel) -> (N,)``."""

register_encoder = ENCODERS.register
register_fusion = FUSIONS.register
register_head = HEADS.register
register_reference = REFERENCES.register
register_reader = READERS.register
register_task_type = TASK_TYPES.register
register_objective = OBJECTIVES.register


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def register_adapter(
    name: str, *, aliases: Iterable[str] = (), **meta: Any
) -> Callable[[_Fn], _Fn]:
    """``ADAPTERS.register`` for what it holds: functions, which the class-typed registry cannot say."""
    return cast("Callable[[_Fn], _Fn]", ADAPTERS.register(name, aliases=aliases, **meta))


def register_acquisition(
    name: str, *, aliases: Iterable[str] = (), **meta: Any
) -> Callable[[_Fn], _Fn]:
    """``ACQUISITIONS.register`` for what it holds: functions (see :data:`ACQUISITIONS`)."""
    return cast("Callable[[_Fn], _Fn]", ACQUISITIONS.register(name, aliases=aliases, **meta))


def create_encoder(name: str, /, **kwargs: Any) -> Any:
    return ENCODERS.create(name, **kwargs)


def create_fusion(name: str, /, **kwargs: Any) -> Any:
    return FUSIONS.create(name, **kwargs)


def create_head(name: str, /, **kwargs: Any) -> Any:
    return HEADS.create(name, **kwargs)


def list_encoders(pattern: str = "*") -> list[str]:
    return ENCODERS.names(pattern)


def list_fusions(pattern: str = "*") -> list[str]:
    return FUSIONS.names(pattern)


def list_heads(pattern: str = "*") -> list[str]:
    return HEADS.names(pattern)
