"""Intermediate fusion by a multimodal autoencoder's joint embedding."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx._nn import masked_mean
from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import mlp
from fusiondx.fusion._latent import Decoders, present_features, sample_subsets
from fusiondx.registry import register_fusion


@register_fusion("autoencoder", reference="Ngiam et al., Multimodal Deep Learning, ICML 2011")
class AutoencoderFusion(Fusion):
    """Joint embedding of the present modalities, trained to reconstruct every modality from it.

    Encoder: a linear projection per modality to ``hidden``, the mean over the present
    modalities, then an MLP to the joint latent, which is the fused vector (``out_dim`` wide; a
    learned ``empty`` vector where nothing is present). Decoders: one small MLP per modality
    from the latent back to that modality's embedding. In training the auxiliary losses are

    - ``recon``: the mean squared error of each present modality's reconstruction from the
      joint latent of all present modalities, summed over the modalities, averaged over cases;
    - ``cross_recon`` (``cross_reconstruction=True``): the same, but the latent is encoded from
      a random non-empty subset of the present modalities (each case's subset uniform among
      them) while every present modality must still be reconstructed. This is Ngiam et al.'s
      training with one modality zeroed out that asks for both back, generalised to M
      modalities; it is what teaches :meth:`impute` to fill in a missing modality.

    Both are times ``recon_weight``. The reconstruction targets are the encoders' embeddings
    held fixed for this loss (detached): the task loss shapes them, the autoencoder learns to
    represent them.

    Kept from the paper: a shared representation from which every modality is reconstructed,
    and training with modalities left out so that the shared code carries cross-modal
    information. Simplified: the paper stacks RBM-pretrained layers over raw audio and video
    features; here the autoencoder works on the modality encoders' embeddings, is trained
    jointly with the task, and an absent modality is left out of the mean (not zero-filled).

    Args:
        in_dims: embedding width per modality.
        out_dim: width of the joint latent, the fused vector.
        hidden: width of the projections and of the hidden layers.
        dropout: dropout inside the encoder MLP.
        recon_weight: weight of the reconstruction losses in the training objective.
        cross_reconstruction: also reconstruct every present modality from a random subset.
    """

    level = "intermediate"
    has_aux_loss = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        hidden: int = 128,
        dropout: float = 0.1,
        recon_weight: float = 1.0,
        cross_reconstruction: bool = True,
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.recon_weight = float(recon_weight)
        self.cross_reconstruction = bool(cross_reconstruction)
        self.proj = nn.ModuleDict({m: nn.Linear(self.in_dims[m], hidden) for m in self.modalities})
        self.encoder = mlp(hidden, hidden, out_dim, layers=2, dropout=dropout)
        self.decoders = Decoders(self.in_dims, out_dim, hidden)
        self.empty = nn.Parameter(torch.zeros(out_dim))

    def _encode(self, xs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        h = torch.stack([self.proj[m](x) for m, x in zip(self.modalities, xs, strict=True)], dim=1)
        latent = self.encoder(masked_mean(h, mask))
        return torch.where(mask.any(dim=1, keepdim=True), latent, self.empty.to(latent.dtype))

    def encode(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The joint latent (B, out_dim) of the present modalities."""
        return self._encode(present_features(feats, mask, self.modalities), mask)

    def impute(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Every modality's embedding (B, D_m) decoded from the joint latent of the present ones.

        Present modalities are reconstructed too (keep the observed values where you have
        them); a case with nothing present decodes the ``empty`` latent. Call it in eval mode
        for a deterministic result.
        """
        return self.decoders(self.encode(feats, mask))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        xs = present_features(feats, mask, self.modalities)
        latent = self._encode(xs, mask)
        if not self.training:
            self.aux_losses = {}
            return latent
        losses = {"recon": self.decoders.error(latent, xs, mask).mean()}
        if self.cross_reconstruction:
            subset = sample_subsets(mask)[:, 0]
            partial = self._encode(xs, subset)
            losses["cross_recon"] = self.decoders.error(partial, xs, mask).mean()
        self.aux_losses = {k: self.recon_weight * v for k, v in losses.items()}
        return latent
