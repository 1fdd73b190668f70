"""Shared data types: modality kinds, the fitted description of a modality, batch layout.

A batch, as produced by :mod:`fusiondx.data` and consumed by models, is a dict::

    {
        "case_id": list[str],
        "inputs": {modality: Tensor | dict[str, Tensor]},   # every modality, even where missing
        "mask":   BoolTensor (B, M),                         # M = modalities in sorted order
        "targets": {task: Tensor},
    }

Per kind, one case's input is:

- ``image``: float (C, H, W) or (C, D, H, W);
- ``signal``: float (C, T), C leads;
- ``text``: long (L,) token ids, 0 = padding;
- ``tabular``: ``{"numeric": float (N,), "numeric_missing": float (N,), "categorical": long (K,)}``
  with categorical id 0 = missing and 1 = a category unseen in training.

A missing modality is a zero placeholder of the right shape whose mask entry is False; models
must never read it as data.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ModalityKind = Literal["image", "signal", "text", "tabular"]
KINDS: tuple[str, ...] = ("image", "signal", "text", "tabular")


@dataclass(frozen=True)
class ModalitySpec:
    """What an encoder needs to know about a modality's tensors, fitted on the training split."""

    name: str
    kind: str
    in_channels: int = 0
    spatial_dims: int = 2
    image_size: tuple[int, ...] = ()
    length: int = 0
    vocab_size: int = 0
    max_length: int = 0
    n_numeric: int = 0
    cardinalities: tuple[int, ...] = field(default_factory=tuple)

    def encoder_kwargs(self, encoder_cls: type[Any]) -> dict[str, Any]:
        """The subset of this spec that ``encoder_cls.__init__`` accepts."""
        accepted = inspect.signature(encoder_cls.__init__).parameters
        return {
            k: v for k, v in asdict(self).items() if k not in ("name", "kind") and k in accepted
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        d["cardinalities"] = list(self.cardinalities)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModalitySpec:
        d = dict(d)
        d["image_size"] = tuple(d.get("image_size", ()))
        d["cardinalities"] = tuple(d.get("cardinalities", ()))
        return cls(**d)
