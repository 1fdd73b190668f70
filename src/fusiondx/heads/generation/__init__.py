"""Clinical report generation: a decoder that writes a report conditioned on the fused case.

The decoder attends over the tokens of every modality (and the fused vector) through
:meth:`HeadContext.memory`, is trained with teacher forcing and decodes greedily or with beam
search. Targets are token ids ``[BOS, w1, ..., EOS, PAD, ...]``; a row of only ``PAD`` is a case
without a reference report and takes no part in the loss or the metrics.

One head, ``generation``, registered as :class:`GenerationHead` (``_base.py``: everything the
decoders share, with its searches in ``_search.py`` and its option checks in ``_options.py``);
its ``decoder`` option picks the class that builds it, one module per kind: :mod:`.transformer`
and :mod:`.lstm`. A new kind is a subclass declared with
``class MyHead(GenerationHead, decoder="mine")`` that supplies ``build_decoder``,
``teacher_forced``, ``decoding_state``, ``step`` and ``reorder``.
"""

from __future__ import annotations

from fusiondx.heads.generation._base import TEXT_METRICS, GenerationHead
from fusiondx.heads.generation._options import CONTEXTS
from fusiondx.heads.generation._search import gnmt_length_penalty
from fusiondx.heads.generation.lstm import LSTMGenerationHead
from fusiondx.heads.generation.transformer import TransformerGenerationHead

__all__ = [
    "CONTEXTS",
    "TEXT_METRICS",
    "GenerationHead",
    "LSTMGenerationHead",
    "TransformerGenerationHead",
    "gnmt_length_penalty",
]
