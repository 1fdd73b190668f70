"""Early (input-level) fusion: low-level features of all modalities, one shared network."""

from __future__ import annotations

from collections.abc import Mapping

from fusiondx.fusion.concat import ConcatFusion
from fusiondx.registry import register_fusion


@register_fusion(
    "early_concat",
    reference="Huang et al., Fusion of medical imaging and electronic health records "
    "using deep learning: a systematic review, npj Digit. Med. 2020 (early fusion)",
)
class EarlyConcatFusion(ConcatFusion):
    """Concatenate shallow per-modality input projections and learn everything in one deep MLP.

    The model feeds this fusion the output of the ``*_lowlevel`` encoders (a pooled,
    low-resolution view of each image or signal, a bag of token embeddings, the raw tabular
    values), so the only deep network sees all modalities together from the start. Missing
    modalities get a learned 'absent' vector. The computation is that of ``concat`` with a deeper
    shared network; what differs is what it is fed.

    Args:
        in_dims: low-level feature width per modality.
        out_dim: width of the fused vector.
        hidden: width of the shared network.
        layers: depth of the shared network.
        dropout: dropout inside the shared network.
    """

    level = "early"

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        hidden: int = 256,
        layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dims, out_dim, hidden=hidden, layers=layers, dropout=dropout)
