"""The ``fairness`` section: which manifest columns define the subgroups a model is scored on.

The columns are read from the manifest beside the model's inputs and written into the
predictions table (``group:<column>``); they never become model inputs unless a modality
lists them too. A numeric column can be cut into bands (``bands``), e.g. ages into
``<40``, ``40-64`` and ``>=65``.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from fusiondx.config._strict import _Strict


class BandConfig(_Strict):
    """A derived subgroup column: a numeric manifest column cut at ``edges``."""

    column: str
    """The numeric manifest column, e.g. ``age``."""
    edges: list[float] = Field(min_length=1)
    """Cut points, increasing: ``[40, 65]`` gives ``<40``, ``40-64``, ``>=65``."""

    @field_validator("edges")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"edges must increase strictly, got {v}")
        return v

    def labels(self) -> list[str]:
        """One label per band, lowest first (``<40``, ``40-64``, ``>=65`` for whole numbers)."""
        whole = all(float(e).is_integer() for e in self.edges)
        fmt = [f"{int(e)}" if whole else f"{e:g}" for e in self.edges]
        out = [f"<{fmt[0]}"]
        for k in range(len(self.edges) - 1):
            hi = f"{int(self.edges[k + 1]) - 1}" if whole else f"<{fmt[k + 1]}"
            out.append(f"{fmt[k]}-{hi}")
        return [*out, f">={fmt[-1]}"]


class FairnessConfig(_Strict):
    """Scoring by subgroup: ``evaluate`` and the study report every column's subgroups."""

    columns: list[str] = Field(default_factory=list)
    """Manifest columns (sex, site, view, ...) or names of ``bands``; [] turns fairness off."""
    min_size: int = Field(30, ge=1)
    """Subgroups with fewer test cases are shown but flagged, and left out of the gaps and of
    the equalised-odds and demographic-parity differences."""
    bands: dict[str, BandConfig] = Field(default_factory=dict)
    """Derived columns: name -> a numeric column cut into bands, e.g.
    ``age_band: {column: age, edges: [40, 65]}``."""

    @model_validator(mode="after")
    def _bands_listed(self) -> FairnessConfig:
        dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dup:
            raise ValueError(f"fairness.columns lists {dup} more than once")
        unused = sorted(set(self.bands) - set(self.columns))
        if unused:
            raise ValueError(
                f"fairness.bands defines {unused} but fairness.columns does not list "
                f"{'it' if len(unused) == 1 else 'them'}; add to columns or remove the band"
            )
        return self

    def manifest_columns(self) -> list[str]:
        """The manifest columns the subgroups are read from (a band's numeric column)."""
        cols = [self.bands[c].column if c in self.bands else c for c in self.columns]
        return list(dict.fromkeys(cols))
