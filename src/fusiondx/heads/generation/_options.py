"""The generation head's options, checked: every invalid one is a ConfigError naming it.

Checked before any layer is built, so a bad ``heads``, token id or ``context`` in a config says
what to set instead of failing inside PyTorch.
"""

from __future__ import annotations

import math

from fusiondx.errors import ConfigError

CONTEXTS = ("all", "fused", "none")


def validate_options(
    *,
    in_dim: int,
    vocab_size: int,
    max_length: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    unk_id: int | None,
    decoder: str,
    layers: int,
    heads: int,
    dropout: float,
    beam_size: int,
    length_penalty: float,
    context: str,
) -> None:
    """Raise a ConfigError naming the first invalid option of the generation head."""
    what = "the generation head"
    if context not in CONTEXTS:
        raise ConfigError(
            f"{what} has no context '{context}'",
            fix="use 'all' (every modality's tokens and the fused vector), 'fused' (the fused "
            "vector only) or 'none' (no conditioning, a language-model baseline)",
        )
    for name, value, low in (
        ("in_dim", in_dim, 1),
        ("vocab_size", vocab_size, 3),
        ("max_length", max_length, 2),
        ("layers", layers, 1),
        ("heads", heads, 1),
        ("beam_size", beam_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(
                f"{what}'s option {name} is {value!r}", fix=f"set {name} to an integer >= {low}"
            )
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
            raise ConfigError(
                f"{what}'s {name} is {value!r}, not a token id of the {vocab_size}-word vocabulary",
                fix=f"set {name} to an integer in [0, {vocab_size})",
            )
    if len({bos_id, eos_id, pad_id}) < 3:
        raise ConfigError(
            f"{what}'s bos_id ({bos_id}), eos_id ({eos_id}) and pad_id ({pad_id}) must differ",
            fix="give the begin, end and padding tokens their own ids",
        )
    if unk_id is not None and (
        isinstance(unk_id, bool)
        or not isinstance(unk_id, int)
        or not 0 <= unk_id < vocab_size
        or unk_id in (bos_id, eos_id, pad_id)
    ):
        raise ConfigError(
            f"{what}'s unk_id is {unk_id!r}, not an ordinary token id of the {vocab_size}-word "
            "vocabulary",
            fix="set unk_id to the [UNK] token's id, or to null if there is none",
        )
    if decoder == "transformer" and in_dim % heads:
        raise ConfigError(
            f"{what}'s heads ({heads}) does not divide in_dim ({in_dim})",
            fix="choose a number of heads that divides the fusion width",
        )
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{what}'s dropout is {dropout!r}", fix="set dropout in [0, 1)")
    if not math.isfinite(length_penalty):
        raise ConfigError(
            f"{what}'s length_penalty is {length_penalty!r}",
            fix="use a finite number (0 = plain log-probability, 1 = about per-token mean)",
        )
