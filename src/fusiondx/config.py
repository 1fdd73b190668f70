"""The run configuration: YAML validated with pydantic before anything runs.

Every section forbids unknown keys and the error names the key, its place in the file and the
closest valid key. Paths in ``data`` are resolved against the YAML file's folder, so a config can
be moved together with its data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fusiondx.errors import ConfigError, did_you_mean

DEFAULT_ENCODERS = {"image": "cnn", "signal": "cnn1d", "text": "text_transformer", "tabular": "mlp"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    """How cases are divided into train / val / test."""

    column: str | None = None
    """Take the split from this manifest column (values train, val, test); overrides fractions."""
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: bool = True
    seed: int | None = None
    """Seed of the random split; defaults to the run's seed. A study fixes it so that every
    training seed sees the same test cases."""
    folds: int | None = Field(None, ge=2)
    """Cross-validation: the test split is fold ``fold`` of ``folds`` (grouped and stratified
    like the default split); val is drawn from the rest with the val fraction."""
    fold: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.folds is not None and self.column:
            raise ValueError(
                f"folds cannot be combined with column '{self.column}', which fixes every "
                "case's split; remove one of them"
            )
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(
                f"fold must be between 0 and folds - 1 = {self.folds - 1}, got {self.fold}"
            )
        return self

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(
                f"fractions must be three positive numbers summing to 1, got {list(v)}"
            )
        return v


class DataConfig(_Strict):
    manifest: Path
    root: Path | None = None
    """Folder that relative paths in the manifest resolve against; defaults to the manifest's folder."""
    sep: str = Field(",", min_length=1, max_length=1)
    """Column separator of a CSV manifest: ',' (default), ';' (spreadsheets set to a locale with
    decimal commas) or a tab ('\\t' in YAML double quotes)."""
    id_column: str = "case_id"
    patient_column: str | None = None
    """When set, all cases of one patient land in the same split; a case with a blank cell is a
    patient of its own."""
    metadata_columns: list[str] = Field(default_factory=list)
    """Acquisition and bookkeeping columns (site, scanner, view, follow-up number, ...). They are
    model inputs only if a modality lists them too; the study's metadata probe measures how well
    they alone predict the label, which no disease model should rely on."""
    split: SplitConfig = SplitConfig()
    cache: Literal["memory", "disk"] = "memory"
    """Decoded cases are kept in memory, or in memory-mapped files that later runs reuse."""
    cache_dir: Path | None = None
    """Folder of the disk cache; default ``<output_dir>/.cache``."""

    @property
    def data_root(self) -> Path:
        return self.root if self.root is not None else self.manifest.parent


class EncoderConfig(_Strict):
    name: str | None = None
    """Registered encoder name; default per kind: image cnn, signal cnn1d, text text_transformer, tabular mlp."""
    options: dict[str, Any] = Field(default_factory=dict)


class AugmentConfig(_Strict):
    flip: bool = False
    rotate: float = Field(0.0, ge=0, le=180)
    scale: float = Field(0.0, ge=0, lt=1)


class ImagePreprocessing(_Strict):
    size: list[int] = Field(default_factory=lambda: [64, 64], min_length=2, max_length=3)
    channels: Literal[1, 3] = 1
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
    window: Literal["header"] | tuple[float, float] | None = None
    """Intensity window (center, width), or 'header' to use the DICOM header's window."""
    augment: AugmentConfig = AugmentConfig()


class SignalPreprocessing(_Strict):
    rate: float | None = Field(100.0, gt=0)
    """Resample every record to this rate (Hz); None keeps native rates (then they must agree)."""
    source_rate: float | None = Field(None, gt=0)
    """Rate of CSV/NPY records, which carry none of their own."""
    length: int = Field(1000, gt=0)
    leads: int | None = Field(None, gt=0)
    lead_names: list[str] | None = None
    normalize: Literal["per_lead", "none"] = "per_lead"
    crop: Literal["start", "center"] = "start"
    min_fraction: float = Field(0.5, gt=0, le=1)


class TextPreprocessing(_Strict):
    tokenizer: Literal["wordpiece", "bpe", "word", "minilm"] = "wordpiece"
    vocab_size: int = Field(2000, ge=50)
    max_length: int = Field(64, ge=4)
    lowercase: bool = True
    min_frequency: int = Field(2, ge=1)


class TabularPreprocessing(_Strict):
    standardize: bool = True


class _ModalityBase(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    encoder: EncoderConfig = EncoderConfig()

    @property
    def encoder_name(self) -> str:
        return self.encoder.name or DEFAULT_ENCODERS[self.kind]  # type: ignore[attr-defined]


class ImageModality(_ModalityBase):
    kind: Literal["image"]
    column: str
    preprocessing: ImagePreprocessing = ImagePreprocessing()


class SignalModality(_ModalityBase):
    kind: Literal["signal"]
    column: str
    preprocessing: SignalPreprocessing = SignalPreprocessing()


class TextModality(_ModalityBase):
    kind: Literal["text"]
    column: str
    preprocessing: TextPreprocessing = TextPreprocessing()


class TabularModality(_ModalityBase):
    kind: Literal["tabular"]
    columns: list[str] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    """Columns (among ``columns``) holding categories; the others must be numeric."""
    preprocessing: TabularPreprocessing = TabularPreprocessing()

    @model_validator(mode="after")
    def _categorical_subset(self) -> TabularModality:
        extra = [c for c in self.categorical if c not in self.columns]
        if extra:
            raise ValueError(f"categorical columns {extra} are not listed in columns")
        return self


Modality = Annotated[
    ImageModality | SignalModality | TextModality | TabularModality, Field(discriminator="kind")
]


class FusionConfig(_Strict):
    name: str = "concat"
    dim: int = Field(128, gt=0)
    """Width of every modality embedding and of the fused vector."""
    options: dict[str, Any] = Field(default_factory=dict)


class TextTargetConfig(_Strict):
    """How the reference text of a generation task becomes token ids (a word vocabulary)."""

    max_length: int = Field(64, ge=4)
    """Tokens per report, counting the begin and end markers; longer reports are cut."""
    vocab_size: int = Field(5000, ge=10)
    min_frequency: int = Field(1, ge=1)
    lowercase: bool = True


class TaskConfig(_Strict):
    name: str = Field("diagnosis", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    head: str = "classification"
    """classification, regression, survival, localization, segmentation or generation."""
    label: str | list[str]
    """The label column. Multilabel: a list of 0/1 columns or one column split by
    label_separator. Survival: [time column, event column]. Localization: a column of boxes
    'x0 y0 x1 y1' in pixels. Segmentation: a column of mask file paths. Generation: a text column."""
    type: str | None = None
    """A task type (binary, multiclass, multilabel, regression, survival, box, mask, text, or
    any registered one). Classification: inferred from the classes when omitted (2 classes ->
    binary, more -> multiclass). Other heads have one type each (regression, survival, box,
    mask, text)."""
    image: str | None = None
    """Localization and segmentation: the image modality the boxes or masks belong to
    (default: the only image modality)."""
    text: TextTargetConfig = TextTargetConfig()
    """Generation only: tokenization of the reference text."""
    classes: list[str] | None = None
    """Declared class names; a label outside them is an error. Inferred from the data when omitted."""
    positive_class: str | None = None
    label_separator: str | None = None
    class_weights: Literal["balanced"] | list[float] | None = None
    weight: float = Field(1.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str | None) -> str | None:
        from fusiondx.registry import TASK_TYPES

        if v is not None and v not in TASK_TYPES:
            known = TASK_TYPES.names()
            raise ValueError(
                f"there is no task type '{v}'.{did_you_mean(v, known)} Known types: "
                f"{', '.join(known)}"
            )
        return v

    @field_validator("classes", "label")
    @classmethod
    def _no_repeats(cls, v: str | list[str] | None, info: Any) -> str | list[str] | None:
        # A repeated class name would become a class of its own that no case can have.
        if isinstance(v, list):
            dup = sorted({c for c in v if v.count(c) > 1})
            if dup:
                raise ValueError(
                    f"{info.field_name} must not repeat a name; repeated: "
                    f"{', '.join(repr(d) for d in dup)}"
                )
        return v


class EarlyStoppingConfig(_Strict):
    monitor: str | None = None
    """Validation metric that early stopping and the best checkpoint follow: a metric of the first
    task (auroc, f1, iou, dice_lesion, bleu4, c_index, ...), '<task>/<metric>' for another task,
    or 'loss'. Default: the first task's primary metric (auroc for classification)."""
    patience: int = Field(5, ge=1)
    mode: Literal["max", "min"] | None = None


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    lr_decay: Literal["cosine", "step", "plateau", "none"] = "cosine"
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    task_weighting: Literal["fixed", "uncertainty"] = "fixed"
    """Multi-task: sum the task losses with the fixed tasks[].weight, or learn the weights by
    homoscedastic uncertainty (Kendall et al., 2018), each task's loss scaled by exp(-s) + s."""
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    """Probability of hiding each present modality of a training case (never all of them)."""
    num_workers: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "cpu"
    precision: str = "32-true"
    deterministic: bool = True
    progress: bool = True
    small_data: Literal["auto", "on", "off"] = "auto"
    """Below 400 training cases ('auto') or always ('on'), settings left at their defaults are
    changed for small cohorts (batch 16, up to 60 epochs, weight decay 1e-2, 32-wide
    embeddings, the frozen MiniLM text encoder); 'off' keeps them. See engine/small_data.py."""


class StudyConfig(_Strict):
    """What `fusiondx study` compares; command-line options override these."""

    strategies: list[str] | Literal["all"] = "all"
    """Fusion strategies to train beside the single-modality baselines (names from
    `fusiondx list fusions`), or all of them."""
    seeds: int = Field(3, ge=1)
    """Training seeds per entry (run seed, run seed + 1, ...); the split stays fixed."""
    folds: int | None = Field(None, ge=2)
    """Cross-validation folds instead of seeds: every case is scored once, out of fold."""
    ablation: bool = True
    """Retrain the winning strategy without each modality in turn."""
    robustness: bool = True
    """Score the winner and the best single modality with modalities removed at test time."""
    missing_rates: list[float] = [0.0, 0.25, 0.5, 0.75, 1.0]
    metric: str | None = None
    """Metric that chooses the winner (on validation data) and ranks the table; default the
    task's primary metric (auroc, iou, dice_lesion, bleu4, c_index, r2)."""
    task: str | None = None
    """Task the study compares on; the first task by default."""
    n_boot: int = Field(1000, ge=100)
    """Bootstrap replicates of the confidence intervals and the paired test."""
    jobs: int = Field(1, ge=1)
    """Trainings run in parallel processes (each gets cores / jobs threads)."""
    references: list[str] | Literal["all"] = "all"
    """scikit-learn references and shortcut probes trained beside the neural entries (names from
    `fusiondx list references`), all of them, or [] for none."""

    @field_validator("missing_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not 0.0 <= r <= 1.0 for r in v):
            raise ValueError(f"missing_rates must be fractions between 0 and 1, got {v}")
        return sorted(v)


class Config(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    output_dir: Path = Path("runs")
    data: DataConfig
    modalities: list[Modality] = Field(min_length=1)
    fusion: FusionConfig = FusionConfig()
    tasks: list[TaskConfig] = Field(min_length=1)
    train: TrainConfig = TrainConfig()
    study: StudyConfig = StudyConfig()
    """Used by `fusiondx study` and `fusiondx search` only."""

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for what, names in (
            ("modality", [m.name for m in self.modalities]),
            ("task", [t.name for t in self.tasks]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {dup}")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def modality(
        self, name: str
    ) -> ImageModality | SignalModality | TextModality | TabularModality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


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

    Relative paths in ``data`` and ``output_dir`` resolve against the YAML file's folder (or
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
    return cfg.model_copy(update={"data": data, "output_dir": res(cfg.output_dir)})


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
