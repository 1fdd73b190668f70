"""`fusiondx prepare`: public datasets in their official layout -> manifest + config.

The adapters are registered functions (``ADAPTERS``, one per module of this package, each
decorated with ``@register_adapter``). Their options come from their own signatures: the command
line parses ``--name value`` pairs against the chosen adapter (:func:`parse_options`), and the
help lists every adapter with its options (:func:`adapters_help`), so adding an adapter touches
no other file. An option of another adapter (e.g. ``--hours`` for PTB-XL) is an error, not ignored.

Example:
    >>> from fusiondx.datasets.prepare import prepare_dataset
    >>> prepare_dataset("ptbxl", "../shared/data/ptbxl500", "../prepared/ptbxl")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusiondx.datasets._adapter import PreparedDataset
from fusiondx.errors import ConfigError, did_you_mean
from fusiondx.registry import ADAPTERS

__all__ = [
    "ADAPTERS",
    "adapters_help",
    "dataset_name",
    "options_of",
    "parse_options",
    "prepare_dataset",
]

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def dataset_name(name: str) -> str:
    """The adapter's name for ``name`` (aliases and case accepted)."""
    key = name.strip().lower()
    if key not in ADAPTERS:
        known = [*ADAPTERS.names(), *(a for e in ADAPTERS.entries() for a in e.aliases)]
        raise ConfigError(
            f"No adapter for dataset '{name}'.{did_you_mean(key, known)}",
            fix=f"use one of: {', '.join(ADAPTERS.names())} (see `fusiondx list adapters`)",
        )
    return ADAPTERS.get(key).name


def options_of(dataset: str) -> list[str]:
    """Keyword options the adapter takes (besides path, out and progress)."""
    return [p for p in ADAPTERS.get(dataset_name(dataset)).options() if p != "progress"]


def prepare_dataset(
    dataset: str, path: str | Path, out: str | Path, *, progress: bool = False, **options: Any
) -> PreparedDataset:
    """Run the adapter of ``dataset`` on ``path`` and write manifest, config and skipped.csv to ``out``.

    Args:
        dataset: an adapter's name (``fusiondx list adapters``) or alias, e.g. ``ptbxl``, ``nih``.
        path: the dataset's folder as downloaded (MedMNIST: the .npz or its folder).
        out: output folder, or the manifest's path (``.csv``).
        progress: show progress bars.
        **options: the adapter's own options (see :func:`options_of`); None values are ignored.

    Raises:
        ConfigError: unknown dataset, or an option the adapter does not take.
        DataError: the folder does not have the dataset's layout.
    """
    name = dataset_name(dataset)
    given = {k: v for k, v in options.items() if v is not None}
    _check_keys(name, list(given))
    return ADAPTERS.get(name).cls(path, out, progress=progress, **given)


def parse_options(dataset: str, args: Sequence[str]) -> dict[str, Any]:
    """The adapter options in command-line words: ``--name value``, ``--name=value``, and for
    yes/no options ``--name`` or ``--no-name``; values converted to the signature's types."""
    name = dataset_name(dataset)
    kinds = _option_types(name)
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("--"):
            raise ConfigError(
                f"'{word}' is not an option of {name}.",
                fix="give the dataset and its folder first, then options as --name value",
            )
        key, has_value, value = word[2:].partition("=")
        key = key.replace("-", "_")
        negated = key.startswith("no_") and kinds.get(key[3:]) is bool
        key = key[3:] if negated else key
        _check_keys(name, [key])
        if kinds[key] is bool and not has_value:
            out[key] = not negated
        else:
            if not has_value:
                i += 1
                if i == len(args) or args[i].startswith("--"):
                    raise ConfigError(f"--{_flag(key)} needs a value.", fix=_takes(name))
                value = args[i]
            out[key] = _convert(value, kinds[key], name, key)
        i += 1
    return out


def adapters_help() -> str:
    """Every adapter with its aliases, options (from its signature and docstring) and an example,
    as Markdown for `fusiondx prepare --help`."""
    lines = [
        "**Datasets** and their options, given after the folder as `--name value` (yes/no options: "
        "`--name` or `--no-name`):",
        "",
    ]
    for e in ADAPTERS.entries():
        also = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        lines.append(f"- **{e.name}**{also}: {e.summary}")
        docs = _arg_docs(e.cls)
        for key, default in e.options().items():
            if key == "progress":
                continue
            if isinstance(default, bool):
                shown = f"`--{_flag(key)}` / `--no-{_flag(key)}` (default: {'yes' if default else 'no'})"
            else:
                shown = f"`--{_flag(key)} {'VALUE' if default is None else default}`"
            lines.append(f"    - {shown}: {docs.get(key, '')}")
        if e.meta.get("example"):
            lines.append(f"    - Example: `fusiondx prepare {e.name} {e.meta['example']}`")
    return "\n".join(lines)


def _check_keys(name: str, keys: list[str]) -> None:
    allowed = options_of(name)
    wrong = [k for k in keys if k not in allowed]
    if wrong:
        shown = ", ".join("--" + _flag(k) for k in wrong)
        hint = did_you_mean("--" + _flag(wrong[0]), ["--" + _flag(a) for a in allowed])
        raise ConfigError(f"{shown} does not apply to {name}.{hint}", fix=_takes(name))


def _takes(name: str) -> str:
    allowed = options_of(name)
    return f"{name} takes: {', '.join('--' + _flag(a) for a in allowed) or 'no options'}"


def _flag(key: str) -> str:
    return key.replace("_", "-")


def _option_types(name: str) -> dict[str, type]:
    """Each option's value type: bool, int, float, or str (also for unions such as ``str | list``)."""
    fn = ADAPTERS.get(name).cls
    hints = typing.get_type_hints(fn)
    out: dict[str, type] = {}
    for key in options_of(name):
        hint = hints.get(key, str)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = str  # the adapter parses the text itself (e.g. labs: "auto" or "50912,50971")
        out[key] = hint if hint in (bool, int, float) else str
    return out


def _convert(value: str, kind: type, name: str, key: str) -> Any:
    if kind is bool:
        if value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(
            f"--{_flag(key)} of {name} is yes or no, got '{value}'.",
            fix=f"use --{_flag(key)} or --no-{_flag(key)}",
        )
    try:
        return kind(value)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(kind, "text")
        raise ConfigError(
            f"--{_flag(key)} of {name} takes {what}, got '{value}'.", fix=_takes(name)
        ) from None


def _arg_docs(fn: Any) -> dict[str, str]:
    """``name: text`` entries of the ``Args:`` section of a Google-style docstring, one line each."""
    doc = inspect.getdoc(fn) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    out: dict[str, str] = {}
    key = None
    for line in section.splitlines():
        line = re.sub(r":\w+:`", "`", line)  # Sphinx roles (:data:`X`) read as plain code
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            key, out[m.group(1)] = m.group(1), m.group(2).strip()
        elif key and line.startswith("        "):
            out[key] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return out
