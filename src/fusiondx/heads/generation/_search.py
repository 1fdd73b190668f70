"""How a report is chosen from a decoder: greedy decoding and beam search with the GNMT penalty.

Both searches only see a next-token function, ``log_probs(tok, t)``: the (N, V) log-probabilities
of the token after position ``t`` for input tokens ``tok`` (N,), from a decoding state the caller
keeps (:meth:`GenerationHead.greedy` and :meth:`GenerationHead.beam_search` build it). Beam
search also tells the caller, through ``reorder(rows, t)``, which rows of that state to keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

LogProbs = Callable[[torch.Tensor, int], torch.Tensor]
"""``(tok (N,), t) -> (N, V)`` log-probabilities of the token after position ``t``."""


def gnmt_length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016).

    A hypothesis is ranked by ``log P(y) / lp(|y|)``. ``alpha = 0`` ranks by the plain sum of
    log-probabilities (which favours short reports); ``alpha = 1`` is close to the mean
    log-probability per token; values in between trade the two off.
    """
    return ((5.0 + length.to(torch.float32)) / 6.0) ** alpha


def greedy_search(
    log_probs: LogProbs,
    *,
    batch: int,
    steps: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """(batch, steps) ids: the most probable next token at every step, ``pad_id`` after EOS."""
    out = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    tok = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    for t in range(steps):
        tok = log_probs(tok, t).argmax(-1)
        out[:, t] = tok.masked_fill(done, pad_id)
        done |= tok == eos_id
        if done.all():
            break
    return out


def beam_search(
    log_probs: LogProbs,
    reorder: Callable[[torch.Tensor, int], None],
    *,
    batch: int,
    beams: int,
    steps: int,
    vocab_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    length_penalty: float,
    device: torch.device,
) -> torch.Tensor:
    """(batch, steps) ids of each case's best beam, over ``batch * beams`` rows of state.

    Each case's beams are next to each other in the rows of ``log_probs``. Beams are ranked by
    ``log P / ((5 + length) / 6) ** length_penalty`` (the GNMT penalty, length counting EOS). A
    beam that emits EOS is finished: it stays in the beam with its score frozen (its only
    continuation is padding at probability one) and competes with the unfinished ones until
    they all finish or ``steps`` tokens are written.
    """
    b, k, v, dev = batch, beams, vocab_size, device
    score = torch.full((b, k), -math.inf, device=dev)
    score[:, 0] = 0.0  # all beams start identical: only the first one may expand at step 0
    length = torch.zeros(b, k, dtype=torch.long, device=dev)
    done = torch.zeros(b, k, dtype=torch.bool, device=dev)
    seqs = torch.full((b, k, steps), pad_id, dtype=torch.long, device=dev)
    tok = torch.full((b * k,), bos_id, dtype=torch.long, device=dev)
    finished_row = torch.full((v,), -math.inf, device=dev)
    finished_row[pad_id] = 0.0
    base = torch.arange(b, device=dev).unsqueeze(1) * k
    for t in range(steps):
        logp = log_probs(tok, t).view(b, k, v)
        logp = torch.where(done.unsqueeze(-1), finished_row, logp)
        cand = score.unsqueeze(-1) + logp  # (B, k, V) raw log-probabilities
        cand_len = (
            torch.where(done, length, torch.full_like(length, t + 1))
            .unsqueeze(-1)
            .expand(-1, -1, v)
        )
        ranked = cand / gnmt_length_penalty(cand_len, length_penalty)
        top = ranked.view(b, -1).topk(k, dim=-1).indices  # (B, k)
        beam, tok2 = top // v, top % v
        score = cand.view(b, -1).gather(1, top)
        prev_done = done.gather(1, beam)
        length = torch.where(prev_done, length.gather(1, beam), torch.full_like(length, t + 1))
        # A beam at -inf (more beams than distinct reports so far) can never win: retire it.
        done = prev_done | (tok2 == eos_id) | torch.isneginf(score)
        seqs = seqs.gather(1, beam.unsqueeze(-1).expand(-1, -1, steps))
        seqs[:, :, t] = tok2
        rows = (base + beam).view(-1)
        reorder(rows, t)
        tok = tok2.view(-1)
        if done.all():
            break
    final = score / gnmt_length_penalty(length.clamp(min=1), length_penalty)
    best = final.argmax(-1)
    return seqs[torch.arange(b, device=dev), best]
