"""Model presets: a named choice of encoder per modality kind and of fusion, set by ``preset:``.

A preset fills in only what the config leaves open: a modality whose ``encoder.name`` is not set
gets the preset's encoder for its kind (its ``options`` under the user's own), and ``fusion``
gets the preset's strategy when the config names none, and each ``train`` setting of the preset
(the learning rate) applies where the config sets none. Anything the config sets wins, so a
preset is a starting point, not a mode. ``fusiondx list presets`` shows them.

``efficient``: at most a fifth of the default model's FLOPs per case, in the spirit of the
lightweight fusion of EHPAL-Net (the seed paper reports "up to 87.8% lower computational cost").
Chosen by measurement on the built-in cohort (docs/deployment_edge_notes.md): a plain CNN at a
quarter of the default's widths for images (MobileNetV2 blocks at half width lost 0.15 AUROC
alone on 32x32 images; the plain CNN keeps the default's inductive bias at a quarter of its
cost), the depthwise-separable ``signal_mobile`` for signals (1/19 of the default ECG encoder's
FLOPs and no loss), a one-layer transformer of width 48 for text (width 32 lost 0.08 alone), a
narrow MLP for tables, and ``concat`` fusion: the ``hybrid`` fusion's per-token projections
cost about 1.7 MFLOPs, which pays for the wider image and text encoders instead. Its learning
rate is 3e-3, not the default 1e-3: on the 1500-case built-in cohort (the demo config, seeds 0-4,
each its own split, at most 20 epochs, `train.threads: 1`) its mean validation AUROC was 0.943
against 0.909 at 1e-3 (higher on every seed), mean test AUROC 0.911 against 0.882; the default
model (lr 1e-3) had 0.949 and 0.939 on the same seeds. On seeds 0-2, lr 2e-3 and 5e-3 fell
between; at lr 1e-3 a bag-of-embeddings text encoder (``num_layers: 0``) with the image CNN
widened into the FLOPs it frees was no better on validation, image widths (11, 22, 44, 88) and
image augmentation worse; at 3e-3 widths (11, 22, 44, 88) had validation 0.939 (seeds 0-4).
"""

from __future__ import annotations

import copy
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "efficient": {
        "description": "a quarter-width CNN for images, the depthwise-separable signal "
        "encoder, a one-layer width-48 transformer for text, a narrow MLP for tables, concat "
        "fusion, learning rate 3e-3: about 4.5 MFLOPs per case on the demo (86% fewer than the "
        "default model)",
        "encoders": {
            "image": {"name": "image_cnn", "options": {"widths": [8, 16, 32, 64]}},
            "signal": {"name": "signal_mobile", "options": {}},
            "text": {
                "name": "text_transformer",
                "options": {"d_model": 48, "num_layers": 1, "num_heads": 4, "dim_feedforward": 96},
            },
            "tabular": {"name": "tabular_mlp", "options": {"hidden_dim": 64}},
        },
        "fusion": {"name": "concat", "options": {}},
        "train": {"lr": 3e-3},
    },
}


def apply_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw config with its ``preset`` filled in where the config leaves a choice open.

    An unknown name is left for :func:`check_preset` to report at the ``preset`` key.
    """
    name = raw.get("preset")
    if name is None or not isinstance(name, str) or name not in PRESETS:
        return raw
    preset = PRESETS[name]
    out = dict(raw)
    modalities = []
    for m in raw.get("modalities") or []:
        if not isinstance(m, dict):
            modalities.append(m)
            continue
        m = copy.deepcopy(m)
        enc = preset["encoders"].get(m.get("kind"))
        given = m.get("encoder") or {}
        if enc is not None and isinstance(given, dict) and given.get("name") is None:
            m["encoder"] = {
                **given,
                "name": enc["name"],
                "options": {**copy.deepcopy(enc["options"]), **(given.get("options") or {})},
            }
        modalities.append(m)
    if "modalities" in raw:
        out["modalities"] = modalities
    fusion = raw.get("fusion")
    if fusion is None or (isinstance(fusion, dict) and "name" not in fusion):
        given = fusion or {}
        out["fusion"] = {
            **given,
            "name": preset["fusion"]["name"],
            "options": {**preset["fusion"]["options"], **(given.get("options") or {})},
        }
    train = raw.get("train")
    if preset.get("train") and (train is None or isinstance(train, dict)):
        out["train"] = {**copy.deepcopy(preset["train"]), **(train or {})}
    return out


def check_preset(name: str | None) -> str | None:
    """``name`` if it is a preset (or None); a ValueError naming the presets otherwise."""
    if name is not None and name not in PRESETS:
        from fusiondx.errors import did_you_mean

        raise ValueError(
            f"unknown preset '{name}'.{did_you_mean(name, PRESETS)} Presets: "
            f"{', '.join(sorted(PRESETS))} (`fusiondx list presets`)"
        )
    return name
