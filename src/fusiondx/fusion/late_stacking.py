"""Late (decision-level) fusion by stacking: a meta-learner fitted on validation predictions."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fusiondx.fusion._base import Fusion
from fusiondx.fusion._common import no_modality_fill, present_mean
from fusiondx.registry import register_fusion

_EPS = 1e-6


@register_fusion(
    "late_stacking",
    reference="Wolpert, Stacked generalization, Neural Networks 1992; "
    "Ting & Witten, Issues in stacked generalization, JAIR 1999",
)
class LateStackingFusion(Fusion):
    """Per-modality predictions combined by a logistic meta-learner fitted on validation data.

    Training: every modality has its own head, trained through the renormalised mean of the
    present modalities' probabilities (as ``late_average``), which is also what validation
    monitors while the meta-learner is unfitted. After training the engine calls
    :meth:`fit_meta` with the best model's per-modality probabilities on the validation split;
    from then on the fused score of class k is

        s_k = b_k + sum_m present_m * (w_mk * z_mk + u_mk)

    with z the per-modality logit (binary, multilabel) or log-probability (multiclass), read
    through a sigmoid or softmax. A missing modality contributes nothing (its term is dropped,
    and u_mk absorbs how the prior shifts when a modality is present); a case with nothing
    present gets the base rate sigmoid(b). The L2 penalty (``l2``, on w and u) keeps a small
    validation split from overfitting the 2MK+K weights (w is pulled towards 1, the unweighted
    log-linear pool, and u towards 0), the concern of Ting & Witten. The validation metrics the
    run reports for this fusion are cross-fitted (each fold scored by a meta-learner fitted on
    the other folds), so they are not inflated by fitting on the same cases.

    Args:
        in_dims: number of task outputs per modality (all equal).
        out_dim: number of task outputs K.
        task: binary | multiclass | multilabel (set by the model builder).
        l2: ridge penalty of the meta-learner.
    """

    level = "late"

    # Buffers registered in __init__ (declared so the type checker knows them as tensors).
    weight: torch.Tensor
    shift: torch.Tensor
    bias: torch.Tensor
    fitted: torch.Tensor

    def __init__(
        self, in_dims: Mapping[str, int], out_dim: int, *, task: str = "binary", l2: float = 1e-2
    ) -> None:
        super().__init__(in_dims, out_dim)
        self.task = task
        self.empty = no_modality_fill(task, self.out_dim)  # before fit_meta; sigmoid(b) after
        self.l2 = float(l2)
        m, k = len(self.modalities), self.out_dim
        # Buffers, not parameters: the meta-learner is fitted by fit_meta, never by the optimiser,
        # and still travels with state_dict / model.pt.
        self.register_buffer("weight", torch.ones(m, k))
        self.register_buffer("shift", torch.zeros(m, k))
        self.register_buffer("bias", torch.zeros(k))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _scores(self, probs: torch.Tensor) -> torch.Tensor:  # (B, M, K) -> (B, M, K)
        p = probs.clamp(_EPS, 1 - _EPS)
        return p.log() if self.task == "multiclass" else torch.logit(p)

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        probs = self.stack(feats)  # (B, M, K)
        if not bool(self.fitted):
            return present_mean(probs, mask, self.empty)
        return self._link(self._logits(probs, mask, self.weight, self.shift, self.bias))

    def _logits(
        self,
        probs: torch.Tensor,
        mask: torch.Tensor,
        weight: torch.Tensor,
        shift: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        present = mask.unsqueeze(-1)
        terms = weight * self._scores(probs) + shift  # (B, M, K)
        return bias + torch.where(present, terms, torch.zeros_like(terms)).sum(dim=1)

    def _link(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1) if self.task == "multiclass" else logits.sigmoid()

    @torch.enable_grad()
    def fit_meta(
        self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor, target: torch.Tensor
    ) -> None:
        """Fit the meta-learner on held-out per-modality probabilities (N, K) and targets.

        Deterministic full-batch L-BFGS on the penalised log-loss, starting from equal weights.
        """
        probs = self.stack({m: feats[m].detach().double() for m in self.modalities})
        mask = mask.bool()
        weight = torch.ones_like(self.weight, dtype=torch.float64).requires_grad_()
        shift = torch.zeros_like(self.shift, dtype=torch.float64).requires_grad_()
        bias = torch.zeros_like(self.bias, dtype=torch.float64).requires_grad_()
        loss_fn: nn.Module
        if self.task == "multiclass":
            loss_fn = nn.CrossEntropyLoss()
            y = target.long().reshape(-1)
        else:
            loss_fn = nn.BCEWithLogitsLoss()
            y = target.double().reshape(len(probs), -1)
        opt = torch.optim.LBFGS(
            [weight, shift, bias], lr=1.0, max_iter=200, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = self._logits(probs, mask, weight, shift, bias)
            loss = loss_fn(logits, y) + self.l2 * ((weight - 1).pow(2).sum() + shift.pow(2).sum())
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            self.weight.copy_(weight.to(self.weight.dtype))
            self.shift.copy_(shift.to(self.shift.dtype))
            self.bias.copy_(bias.to(self.bias.dtype))
            self.fitted.fill_(True)
