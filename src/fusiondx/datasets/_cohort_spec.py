"""The cohort file of `prepare fhir` / `prepare omop`: what a case is, its label, its windows.

One YAML file serves both sources: FHIR codes (``system`` + ``code``) and OMOP concept ids sit
side by side, each adapter reads its own. Validated with pydantic; an error names the key.

Example (``cohort.yaml``)::

    case: encounter            # or: patient (index time = the patient's last encounter)
    label:
      name: label              # manifest column
      positive: disease
      negative: healthy
      conditions:              # FHIR Condition codes ...
        - {system: snomed, code: "64572001"}
      concept_ids: [4274025]   # ... or OMOP condition_concept_id
      window: [0, 1]           # days after the index time the diagnosis may be recorded
    windows:                   # days relative to the index time, per modality
      tabular: [-2, 1]
      signal: [-2, 1]
      text: [-2, 1]
      image: [-2, 1]
    demographics: [age, sex]
    features:                  # last value in the window
      - {name: crp, code: "1988-5", unit: mg/L, concept_id: 3020460}
    signal: {name: ecg, code: "11524-6"}
    text: {name: report}
    image: {name: image}
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fusiondx.errors import ConfigError

SYSTEMS = {
    "snomed": "http://snomed.info/sct",
    "sct": "http://snomed.info/sct",
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "icd-10": "http://hl7.org/fhir/sid/icd-10",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd-10-cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "loinc": "http://loinc.org",
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
MODALITY_KINDS = ("tabular", "signal", "text", "image")
Demographic = Literal["age", "sex"]
DEMOGRAPHICS: tuple[Demographic, ...] = ("age", "sex")


def system_url(system: str) -> str:
    """A short name (snomed, icd10, loinc) as its canonical URL; URLs pass unchanged."""
    return SYSTEMS.get(system.strip().lower(), system.strip())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Code(_Strict):
    """A coded concept: ``system`` (snomed, icd10, loinc or a URL) and ``code``."""

    system: str
    code: str

    @field_validator("code", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @property
    def url(self) -> str:
        return system_url(self.system)


class ObservationRule(_Strict):
    """Positive when the last value of this Observation code in the label window satisfies
    ``op value``, e.g. ``{code: "2160-0", op: ">", value: 1.3}``."""

    system: str = "loinc"
    code: str
    op: Literal[">", ">=", "<", "<=", "=="] = ">="
    value: float
    concept_id: int | None = None

    def holds(self, x: float) -> bool:
        return OPS[self.op](x, self.value)


Window = tuple[float, float]


def _check_window(v: Window) -> Window:
    if v[0] > v[1]:
        raise ValueError(f"a window is [start, end] in days with start <= end, got {list(v)}")
    return v


class Label(_Strict):
    name: str = "label"
    positive: str = "positive"
    negative: str = "negative"
    conditions: list[Code] = Field(default_factory=list)
    concept_ids: list[int] = Field(default_factory=list)
    observation: ObservationRule | None = None
    window: Window = (-36500.0, 36500.0)

    @field_validator("window")
    @classmethod
    def _window(cls, v: Window) -> Window:
        return _check_window(v)

    @model_validator(mode="after")
    def _one_rule(self) -> Label:
        if not (self.conditions or self.concept_ids or self.observation):
            raise ValueError("give conditions (FHIR), concept_ids (OMOP) or an observation rule")
        if self.positive == self.negative:
            raise ValueError("positive and negative must be different class names")
        return self


class Feature(_Strict):
    """A tabular column: the last value of this code in the tabular window."""

    name: str
    code: str | None = None
    system: str = "loinc"
    concept_id: int | None = None
    unit: str | None = None  # UCUM; values in other units are converted to it
    categorical: bool = False

    @field_validator("code", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class Part(_Strict):
    name: str
    code: str | None = None
    system: str = "loinc"


class Windows(_Strict):
    tabular: Window = (-36500.0, 0.0)
    signal: Window = (-36500.0, 0.0)
    text: Window = (-36500.0, 0.0)
    image: Window = (-36500.0, 0.0)

    @field_validator("*")
    @classmethod
    def _window(cls, v: Window) -> Window:
        return _check_window(v)


class CohortSpec(_Strict):
    case: Literal["patient", "encounter"] = "encounter"
    label: Label
    windows: Windows = Field(default_factory=Windows)
    demographics: list[Demographic] = Field(default_factory=lambda: list(DEMOGRAPHICS))
    features: list[Feature] = Field(default_factory=list)
    signal: Part | None = None
    text: Part | None = None
    image: Part | None = None

    @model_validator(mode="after")
    def _unique(self) -> CohortSpec:
        names = [f.name for f in self.features] + list(self.demographics)
        names += [p.name for p in (self.signal, self.text, self.image) if p is not None]
        names.append(self.label.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"column name(s) {dup} are used twice")
        return self


def load_cohort(path: str | Path) -> CohortSpec:
    """Read and validate a cohort file; a mistake is a ConfigError naming the key."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            "The cohort file does not exist.",
            file=path,
            fix="pass --cohort a YAML file (see docs/interoperability.md for an example)",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"The cohort file is not valid YAML ({' '.join(str(exc).split())}).",
            file=path,
            fix="check the indentation and quoting",
        ) from None
    try:
        return CohortSpec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(
            f"Cohort key '{key}': {err['msg']} (got {err.get('input')!r}).",
            file=path,
            fix="see the cohort file example in docs/interoperability.md",
        ) from None
