"""Reading a config: YAML (a key given twice is an error) validated into a :class:`Config`, with
one readable sentence per problem and relative paths resolved against the file's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fusiondx.config.modalities import (
    ImageModality,
    SignalModality,
    TabularModality,
    TextModality,
    _ModalityBase,
)
from fusiondx.config.run import Config
from fusiondx.errors import ConfigError, did_you_mean


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of the YAML repeats a key (``key``, first and second line, counting from 1)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} repeated on lines {first} and {second}")
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping, at any depth."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *anchor' then overriding a merged key is ordinary YAML
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it itself
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` for a key given twice."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


def load_config(source: str | Path | dict[str, Any], *, base_dir: Path | None = None) -> Config:
    """Read and validate a config from a YAML path or a dict.

    Relative paths in ``data``, ``output_dir`` and ``encoder.init`` resolve against the YAML file's folder (or
    ``base_dir`` for a dict, default: the working directory).
    """
    where: str | None = None
    if isinstance(source, dict):
        raw = source
        base = base_dir or Path.cwd()
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ConfigError(
                "The config file does not exist.",
                file=path,
                fix="check the path; `fusiondx fit --help` shows an example config",
            )
        try:
            raw = load_yaml(path.read_text(encoding="utf-8"))
        except DuplicateKeyError as exc:
            raise ConfigError(
                f"The config sets '{exc.key}' twice (line {exc.first} and line {exc.second}); "
                "YAML would silently keep only the second and drop the first.",
                file=path,
                fix=f"merge the two '{exc.key}:' entries into one",
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"The config is not valid YAML ({exc}).",
                file=path,
                fix="fix the YAML syntax at the line shown",
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(
                "The config must be a YAML mapping at the top level.",
                file=path,
                fix="start the file with keys such as 'name:', 'data:', 'modalities:'",
            )
        base = base_dir or path.parent
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            _explain(exc, raw), file=where, fix="correct the key or value named above"
        ) from None
    return _resolve_paths(cfg, base)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def res(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    data = cfg.data.model_copy(
        update={
            "manifest": res(cfg.data.manifest),
            "root": res(cfg.data.root),
            "cache_dir": res(cfg.data.cache_dir),
        }
    )
    modalities = [
        m.model_copy(update={"encoder": m.encoder.model_copy(update={"init": res(m.encoder.init)})})
        if m.encoder.init is not None
        else m
        for m in cfg.modalities
    ]
    return cfg.model_copy(
        update={"data": data, "output_dir": res(cfg.output_dir), "modalities": modalities}
    )


def _explain(exc: ValidationError, raw: dict[str, Any]) -> str:
    """One readable sentence per pydantic error, with 'did you mean' for unknown keys."""
    lines = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err["loc"]]
        # Discriminated unions put the tag ('image', ...) into the path; it is not a key.
        loc = [p for p in loc if p not in ("image", "signal", "text", "tabular")]
        dotted = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            key = loc[-1]
            allowed = _allowed_keys(exc, err, raw)
            lines.append(f"unknown key '{key}' at '{dotted}'.{did_you_mean(key, allowed)}")
        elif err["type"] == "missing":
            lines.append(f"required key '{dotted}' is missing")
        elif err["type"] == "union_tag_invalid":
            lines.append(f"'{dotted}': kind must be one of image, signal, text, tabular")
        else:
            lines.append(f"'{dotted}': {err['msg']} (got {err.get('input')!r})")
    more = len(exc.errors()) - 5
    text = "The config is invalid: " + "; ".join(lines)
    return text + (f"; and {more} more problem(s)" if more > 0 else "")


def _allowed_keys(exc: ValidationError, err: Any, raw: dict[str, Any]) -> list[str]:
    """Field names of the model that rejected the key, found by walking the schema path."""
    model: Any = Config
    loc = list(err["loc"][:-1])
    node: Any = raw
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else {}
            i += 1
            continue
        if part in ("image", "signal", "text", "tabular") and model is _ModalityBase:
            model = {
                "image": ImageModality,
                "signal": SignalModality,
                "text": TextModality,
                "tabular": TabularModality,
            }[part]
            i += 1
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        node = node.get(part, {}) if isinstance(node, dict) else {}
        model = _inner_model(field.annotation)
        i += 1
    return list(getattr(model, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    for a in args:
        inner = _inner_model(a)
        if inner is not None:
            if inner in (ImageModality, SignalModality, TextModality, TabularModality):
                return _ModalityBase
            return inner
    return None
