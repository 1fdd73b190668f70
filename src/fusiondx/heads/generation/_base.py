"""The generation head's shared part: embedding, conditioning, loss, decoding, metrics.

A decoder kind (:mod:`.transformer`, :mod:`.lstm`) subclasses :class:`GenerationHead` with
``decoder="<kind>"`` and supplies its layers and how they run: teacher-forced over a whole
target, or one token at a time from a decoding state. The searches over those tokens (greedy,
beam) are in ``_search.py``; the options' checks in ``_options.py``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusiondx.errors import ConfigError
from fusiondx.evaluation.text import TEXT_METRICS
from fusiondx.heads._base import Head, HeadContext, no_loss
from fusiondx.heads.generation import _search
from fusiondx.heads.generation._options import validate_options
from fusiondx.heads.generation._search import gnmt_length_penalty
from fusiondx.registry import register_head


@register_head("generation")
class GenerationHead(Head):
    """Report generation: transformer or LSTM decoder attending over every modality's tokens.

    Trained with teacher forcing (token cross-entropy, padding ignored); ``predict`` writes a
    report greedily or with beam search. Metrics: BLEU-1..4, ROUGE-L and METEOR (primary: BLEU-4).

    The decoder's width is ``in_dim``, the width of the fused vector and of every modality token.
    Both decoders tie the output projection to the token embedding (logits are the output
    state times the embedding matrix, plus a bias): fewer parameters, which helps on the small
    vocabularies and cohorts of medical reports. Generation never emits ``BOS`` or ``PAD``.

    Args:
        in_dim: width of the fused vector and of the modality tokens (the decoder width).
        vocab_size: number of token ids.
        max_length: longest target, ``BOS`` and ``EOS`` included; ``predict`` writes at most
            ``max_length - 1`` tokens.
        bos_id: id of the begin-of-sequence token every target starts with.
        eos_id: id of the end-of-sequence token.
        pad_id: id of padding (``0`` in FusionDx tokenizers).
        unk_id: id of the unknown-word token (``1`` in FusionDx tokenizers), or None. Only the
            metrics use it: an unknown word in a reference matches nothing, not even ``[UNK]``.
        decoder: ``"transformer"`` (pre-norm ``nn.TransformerDecoder``, learned positions,
            causal self-attention, cross-attention over the memory, key-value cache when
            decoding) or ``"lstm"`` (stacked LSTM cells whose initial state comes from the fused
            vector (the learned token for context "none"), with additive (Bahdanau) attention
            over the memory at every step, its read-out fed in with the previous word).
        layers: number of decoder layers.
        heads: attention heads of the transformer decoder (must divide ``in_dim``).
        dropout: dropout inside the decoder.
        beam_size: beams of ``predict``; 1 decodes greedily.
        length_penalty: ``alpha`` of the GNMT length penalty that ranks beams,
            ``log P(y) / ((5 + |y|) / 6) ** alpha`` with ``|y|`` counting ``EOS``; 0 ranks by
            the plain log-probability. Greedy decoding does not use it.
        context: what the decoder conditions on: ``"all"`` (the fused vector and the tokens of
            every present modality), ``"fused"`` (the fused vector only) or ``"none"`` (one
            learned token that is the same for every case: an unconditional language model, the
            "no-context decoder" baseline).
    """

    primary_metric = "bleu4"
    needs = frozenset({"tokens"})
    decodes = True
    skips_missing_targets = True
    decoder_kind: ClassVar[str] = ""
    """The ``decoder`` option a subclass implements (set by ``decoder=`` in its class line)."""
    _kinds: ClassVar[dict[str, type[GenerationHead]]] = {}
    banned: torch.Tensor  # buffer registered in __init__

    def __init_subclass__(cls, decoder: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if decoder is not None:
            cls.decoder_kind = decoder
            GenerationHead._kinds[decoder] = cls

    def __new__(cls, *args: Any, decoder: str | None = None, **kwargs: Any) -> GenerationHead:
        """``GenerationHead(decoder=...)`` builds the class of that decoder kind."""
        kinds = GenerationHead._kinds
        if cls is GenerationHead:
            decoder = decoder or "transformer"
            if decoder not in kinds:
                raise ConfigError(
                    f"the generation head has no decoder '{decoder}'",
                    fix=f"use one of: {', '.join(sorted(kinds))}",
                )
            cls = kinds[decoder]
        # A subclass is built as itself (copies and unpickling call __new__ without arguments);
        # __init__ checks that its decoder option names it.
        return super().__new__(cls)

    @classmethod
    def decoders(cls) -> list[str]:
        """The decoder kinds there are (the ``decoder`` option's values)."""
        return sorted(GenerationHead._kinds)

    def __init__(
        self,
        *,
        in_dim: int,
        vocab_size: int,
        max_length: int,
        bos_id: int,
        eos_id: int,
        pad_id: int = 0,
        unk_id: int | None = 1,
        decoder: str = "transformer",
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        context: str = "all",
    ) -> None:
        super().__init__()
        if decoder != self.decoder_kind:
            raise ConfigError(
                f"{type(self).__name__} is the '{self.decoder_kind}' decoder, not '{decoder}'",
                fix=f"build GenerationHead(decoder='{decoder}'), or pass decoder='{self.decoder_kind}'",
            )
        validate_options(
            in_dim=in_dim,
            vocab_size=vocab_size,
            max_length=max_length,
            bos_id=bos_id,
            eos_id=eos_id,
            pad_id=pad_id,
            unk_id=unk_id,
            decoder=decoder,
            layers=layers,
            heads=heads,
            dropout=dropout,
            beam_size=beam_size,
            length_penalty=length_penalty,
            context=context,
        )
        self.in_dim, self.vocab_size, self.max_length = in_dim, vocab_size, max_length
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = bos_id, eos_id, pad_id, unk_id
        self.context = context
        self.num_layers, self.num_heads = layers, heads
        self.beam_size, self.length_penalty = beam_size, float(length_penalty)

        self.embed = nn.Embedding(vocab_size, in_dim)
        # Small init: with the tied output projection, logits of an untrained head stay O(1).
        nn.init.normal_(self.embed.weight, std=in_dim**-0.5)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        # The "none" context: one learned token shared by every case, so shapes stay uniform
        # while the decoder learns nothing case-specific from it.
        self.null_token = nn.Parameter(torch.zeros(in_dim)) if context == "none" else None
        banned = torch.zeros(vocab_size, dtype=torch.bool)
        banned[[bos_id, pad_id]] = True
        self.register_buffer("banned", banned, persistent=False)

        self.build_decoder(layers=layers, heads=heads, dropout=dropout)

    # ------------------------------------------------------------------ what a decoder kind supplies

    def build_decoder(self, *, layers: int, heads: int, dropout: float) -> None:
        """Create the decoder's layers (after the token embedding, whose width is ``in_dim``)."""
        raise NotImplementedError

    def teacher_forced(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor, inp: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, L, vocab_size) of the token after each of ``inp`` (B, L), all at once."""
        raise NotImplementedError

    def decoding_state(
        self, fused: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor
    ) -> dict[str, Any]:
        """What :meth:`step` needs to decode one token at a time, for N rows of ``memory``."""
        raise NotImplementedError

    def step(self, tok: torch.Tensor, t: int, st: dict[str, Any]) -> torch.Tensor:
        """Logits (N, V) of the token after position ``t``, whose input token is ``tok`` (N,)."""
        raise NotImplementedError

    def reorder(self, st: dict[str, Any], index: torch.Tensor, t: int) -> None:
        """Keep the decoding state of rows ``index`` after step ``t`` (beam search moves beams between rows)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ conditioning

    def _memory(
        self, fused: torch.Tensor, ctx: HeadContext | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim) tokens to attend over and their (B, T) padding (True = ignore)."""
        b = fused.shape[0]
        if self.context == "none":
            assert self.null_token is not None  # built in __init__ for context 'none'
            mem = self.null_token.to(fused.dtype).expand(b, 1, -1)
        elif self.context == "fused":
            mem = fused.unsqueeze(1)
        else:
            if ctx is None:
                raise ValueError(
                    "the generation head with context='all' needs the HeadContext (the modality "
                    "tokens); pass ctx, or build the head with context='fused'"
                )
            mem, pad = ctx.memory(fused)
            if mem.shape[-1] != self.in_dim:
                raise ValueError(
                    f"modality tokens are {mem.shape[-1]} wide but the generation head's in_dim is "
                    f"{self.in_dim}; the tokens must have the fused vector's width"
                )
            return mem, pad.to(mem.device)
        return mem, torch.zeros(b, 1, dtype=torch.bool, device=fused.device)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.embed.weight, self.out_bias)

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities of decoding: BOS and PAD can never be generated."""
        return logits.float().masked_fill(self.banned, -math.inf).log_softmax(-1)

    # ------------------------------------------------------------------ training

    def forward(
        self,
        fused: torch.Tensor,
        ctx: HeadContext | None = None,
        target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits (B, L-1, vocab_size) that predict ``target[:, 1:]`` from ``target[:, :-1]``."""
        if target is None:
            raise ValueError(
                "GenerationHead.forward needs the reference tokens (target) for teacher forcing; "
                "use predict() to generate a report without them"
            )
        if target.dim() != 2 or target.shape[1] < 2:
            raise ValueError(
                f"generation targets must be (batch, length >= 2) token ids, got shape "
                f"{tuple(target.shape)}"
            )
        if target.shape[1] > self.max_length:
            raise ValueError(
                f"generation targets are {target.shape[1]} tokens long but the head's max_length "
                f"is {self.max_length}"
            )
        memory, padding = self._memory(fused, ctx)
        return self.teacher_forced(fused, memory, padding, target[:, :-1].long())

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean token cross-entropy over ``target[:, 1:]``, padding (hence empty rows) ignored."""
        gold = target[:, 1:].long()
        if not (gold != self.pad_id).any():
            return no_loss(outputs)
        return F.cross_entropy(
            outputs.reshape(-1, outputs.shape[-1]).float(),
            gold.reshape(-1),
            ignore_index=self.pad_id,
        )

    # ------------------------------------------------------------------ incremental decoding

    def _start(self, fused: torch.Tensor, ctx: HeadContext | None, beams: int) -> dict[str, Any]:
        """Decoding state for ``B * beams`` rows (each case's beams next to each other)."""
        memory, padding = self._memory(fused, ctx)
        if beams > 1:
            fused = fused.repeat_interleave(beams, 0)
            memory = memory.repeat_interleave(beams, 0)
            padding = padding.repeat_interleave(beams, 0)
        return self.decoding_state(fused, memory, padding)

    # ------------------------------------------------------------------ inference

    def predict(self, fused: torch.Tensor, ctx: HeadContext | None = None) -> torch.Tensor:
        """Generated ids (B, max_length - 1) after BOS: EOS included, ``pad_id`` after it."""
        if self.beam_size == 1:
            return self.greedy(fused, ctx)
        return self.beam_search(fused, ctx, self.beam_size)

    @torch.no_grad()
    def greedy(self, fused: torch.Tensor, ctx: HeadContext | None = None) -> torch.Tensor:
        """Greedy decoding: the most probable next token at every step."""
        st = self._start(fused, ctx, 1)
        return _search.greedy_search(
            lambda tok, t: self._log_probs(self.step(tok, t, st)),
            batch=fused.shape[0],
            steps=self.max_length - 1,
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            device=fused.device,
        )

    @torch.no_grad()
    def beam_search(
        self, fused: torch.Tensor, ctx: HeadContext | None = None, beam_size: int | None = None
    ) -> torch.Tensor:
        """Beam search, batched over cases; returns each case's best beam.

        Beams are ranked by ``log P / ((5 + length) / 6) ** length_penalty`` (the GNMT penalty,
        length counting EOS). A beam that emits EOS is finished: it stays in the beam with its
        score frozen (its only continuation is padding at probability one) and competes with
        the unfinished ones until they all finish or ``max_length - 1`` tokens are written.
        """
        k = self.beam_size if beam_size is None else beam_size
        if k < 1:
            raise ValueError(f"beam_size must be >= 1, got {k}")
        st = self._start(fused, ctx, k)
        return _search.beam_search(
            lambda tok, t: self._log_probs(self.step(tok, t, st)),
            lambda rows, t: self.reorder(st, rows, t),
            batch=fused.shape[0],
            beams=k,
            steps=self.max_length - 1,
            vocab_size=self.vocab_size,
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            length_penalty=self.length_penalty,
            device=fused.device,
        )

    @torch.no_grad()
    def sequence_score(
        self, fused: torch.Tensor, ctx: HeadContext | None, generated: torch.Tensor
    ) -> torch.Tensor:
        """(B,) length-penalised log-probability of ``generated`` (ids after BOS, as ``predict`` gives).

        The ranking score of beam search: the tokens up to and including the first EOS (all of
        them if there is none) with BOS and PAD never allowed, divided by the GNMT penalty.
        """
        b = generated.shape[0]
        bos = torch.full((b, 1), self.bos_id, dtype=torch.long, device=generated.device)
        logp = self._log_probs(self.forward(fused, ctx, torch.cat([bos, generated.long()], dim=1)))
        tok_logp = logp.gather(-1, generated.long().unsqueeze(-1)).squeeze(-1)
        is_eos = (generated == self.eos_id).long()
        keep = (is_eos.cumsum(1) - is_eos) == 0  # positions up to and including the first EOS
        total = torch.where(keep, tok_logp, torch.zeros_like(tok_logp)).sum(1)
        return total / gnmt_length_penalty(keep.sum(1).clamp(min=1), self.length_penalty)

    # ------------------------------------------------------------------ metrics

    def evaluate(self, predictions: Any, target: torch.Tensor) -> dict[str, float]:
        """BLEU-1..4, ROUGE-L and METEOR of generated ids against the targets with a reference.

        The target's BOS is dropped; both sides are cut at EOS and stripped of padding; cases
        whose reference is empty are left out (all metrics NaN when none is left). An unknown
        word (``unk_id``) in a reference matches nothing, so writing ``[UNK]`` earns nothing.
        """
        from fusiondx.evaluation.text import strip, text_metrics

        preds = np.asarray(torch.as_tensor(predictions).cpu())
        refs_all = np.asarray(torch.as_tensor(target).cpu())[:, 1:]
        if len(preds) != len(refs_all):
            raise ValueError(f"{len(preds)} generated reports but {len(refs_all)} targets")
        ids = {"pad": self.pad_id, "eos": self.eos_id, "bos": self.bos_id}
        hyps, refs = [], []
        for p, r in zip(strip(preds, **ids), strip(refs_all, **ids), strict=True):
            if len(r):
                hyps.append(p)
                refs.append(r)
        if not refs:
            return {k: float("nan") for k in TEXT_METRICS}
        return {k: float(v) for k, v in text_metrics(hyps, refs, unk=self.unk_id).items()}
