"""Generation: the findings written as text, scored against a reference text.

Label: a text column (empty: no reference). The text is lower-cased (``tasks[].text``) and split
into words and punctuation; the word vocabulary is fitted on the training split. Targets: int64
(N, L), word ids ``[BOS] w1 ... [EOS]`` padded with 0; all zeros where the case has no reference
text (ignored). ``predictions.csv``: ``t_true`` (the reference as the model's vocabulary sees it)
and ``t_pred`` (generated), words separated by spaces.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusiondx.errors import DataError
from fusiondx.evaluation.text import TEXT_METRICS
from fusiondx.registry import register_task_type
from fusiondx.tasks._base import (
    Example,
    LabelSource,
    Scorer,
    Shown,
    TaskInfo,
    TaskType,
    no_training,
    spread,
    weighted,
)

if TYPE_CHECKING:
    from fusiondx.config import TaskConfig

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"


@register_task_type("text")
class Text(TaskType):
    """A report per case; corpus BLEU-1..4, mean ROUGE-L and METEOR on the vocabulary's words."""

    heads = ("generation",)
    may_be_empty = True
    metrics = TEXT_METRICS
    baseline_without_input = True
    no_reference_note = "; the decoder without input is this task's simple baseline"

    def fit(
        self, info: TaskInfo, df: pd.DataFrame, train: np.ndarray, task: TaskConfig
    ) -> TaskInfo:
        texts = [_clean(str(v), task.text.lowercase) for v in df[info.label[0]][train].dropna()]
        if not texts:
            raise DataError(
                f"No training case of task '{info.name}' has a reference text.",
                column=info.label[0],
                fix="fill the text column for training cases",
            )
        tok = _word_tokenizer(texts, task.text.vocab_size, task.text.min_frequency)
        return replace(
            info,
            state={
                "tokenizer": tok.to_str(),
                "max_length": task.text.max_length,
                "lowercase": task.text.lowercase,
            },
        )

    def encode(
        self, info: TaskInfo, src: LabelSource, errors: list[DataError] | None = None
    ) -> np.ndarray:
        return encode_texts(info, src.df[info.label[0]])

    def split_key(self, info: TaskInfo, src: LabelSource) -> np.ndarray:
        return np.full(len(src.df), "all")

    def check_train(self, info: TaskInfo, y: np.ndarray) -> None:
        if len(y) == 0 or not bool((y > 0).any()):
            no_training(info, "reference text")

    def head_inputs(self, info: TaskInfo) -> dict[str, Any]:
        return super().head_inputs(info) | special_ids(info)

    def metrics_of(self, info: TaskInfo, output: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """As the generation head scores: the target's BOS dropped, both sides cut at EOS and
        stripped of padding, cases without a reference left out."""
        from fusiondx.evaluation.text import strip, text_metrics

        sp = special_ids(info)
        ids = {"pad": sp["pad_id"], "eos": sp["eos_id"], "bos": sp["bos_id"]}
        pairs = [
            (p, r)
            for p, r in zip(
                strip(np.asarray(output), **ids), strip(np.asarray(y)[:, 1:], **ids), strict=True
            )
            if len(r)
        ]
        if not pairs:
            return {k: float("nan") for k in self.metrics}
        m = text_metrics([p for p, _ in pairs], [r for _, r in pairs], unk=sp["unk_id"])
        return {k: float(v) for k, v in m.items()}

    def prediction_columns(
        self, info: TaskInfo, output: np.ndarray, y: np.ndarray | None
    ) -> dict[str, Any]:
        cols: dict[str, Any] = {} if y is None else {f"{info.name}_true": decode_texts(info, y)}
        return cols | {f"{info.name}_pred": decode_texts(info, output)}

    def constant(self, info: TaskInfo, frame: pd.DataFrame) -> bool:
        return len(frame) > 1 and frame[f"{info.name}_pred"].nunique(dropna=False) == 1

    def case_scores(self, info: TaskInfo, frame: pd.DataFrame) -> dict[str, Scorer]:
        from fusiondx.evaluation.text import text_metrics_from_scores, text_scores

        t = info.name
        # The written words, not their ids: METEOR matches stems, synonyms and paraphrases. An
        # empty reference is a case without reference text and drops out of every metric.
        refs = frame[f"{t}_true"].fillna("").astype(str).tolist()
        hyps = frame[f"{t}_pred"].fillna("").astype(str).tolist()
        scores = text_scores(hyps, refs, unk=UNK)

        def scorer(m: str) -> Scorer:
            return weighted(lambda w: text_metrics_from_scores(scores, w)[m], len(refs))

        return {m: scorer(m) for m in self.metrics}

    def samples(
        self, info: TaskInfo, a: Shown, b: Shown, load_image: Callable[[str], np.ndarray]
    ) -> dict[str, Any] | None:
        """Findings written for test cases with a reference, beside the reference."""
        t, fa, fb = info.name, a.frame, b.frame
        has_ref = np.flatnonzero(fa[f"{t}_true"].fillna("").astype(str).str.len().to_numpy() > 0)
        rows = [
            {
                "case_id": str(fa.index[i]),
                "reference": _readable(fa[f"{t}_true"].iloc[i]),
                "a": _readable(fa[f"{t}_pred"].iloc[i]),
                "b": _readable(fb[f"{t}_pred"].iloc[i]),
            }
            for i in spread(has_ref)
        ]
        return {"kind": self.name, "a": a.id, "b": b.id, "rows": rows}

    def samples_html(
        self, samples: dict[str, Any], name: Callable[[str], str], figure: Callable[[str, str], str]
    ) -> str:
        e = html.escape
        head = (
            f"<tr><th>case</th><th>reference</th><th>{e(name(samples['a']))}</th>"
            f"<th>{e(name(samples['b']))}</th></tr>"
        )
        rows = "".join(
            f"<tr><td>{e(str(r['case_id']))}</td><td>{e(str(r['reference']))}</td><td>{e(str(r['a']))}</td>"
            f"<td>{e(str(r['b']))}</td></tr>"
            for r in samples["rows"]
        )
        return (
            f"<p>Findings written for test cases (first seed), next to the reference.</p>"
            f"<table>{head}{rows}</table>"
        )

    def example(self, n: int, rng: np.random.Generator) -> Example:
        words = np.array(
            ["no", "acute", "mild", "cardiomegaly", "small", "left", "effusion", "normal", "heart"]
        )
        texts = [
            " ".join(rng.choice(words, rng.integers(2, 6))) + " ." if i % 9 != 8 else None
            for i in range(n)
        ]
        return Example(
            {
                "name": "findings",
                "head": "generation",
                "label": "findings",
                "text": {"max_length": 10},
            },
            pd.DataFrame({"findings": texts}),
            perfect=lambda t: t[:, 1:],  # generated ids start after the begin marker
            noise=lambda t, g: g.permutation(t[:, 1:].ravel()).reshape(len(t), -1),
            bad=None,
        )


def _readable(text: Any) -> str:
    """Words as the model writes them ('there is mild cardiomegaly .') -> a sentence."""
    s = " ".join(str(text if isinstance(text, str) else "").split())
    for p in (".", ",", ";", ":", "?", "!"):
        s = s.replace(f" {p}", p)
    return ". ".join(x[:1].upper() + x[1:] for x in s.split(". "))


def _clean(text: str, lowercase: bool) -> str:
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def _word_tokenizer(texts: list[str], vocab_size: int, min_frequency: int) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK, BOS, EOS],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def text_tokenizer(info: TaskInfo) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(info.state["tokenizer"])


def special_ids(info: TaskInfo, tok: Any = None) -> dict[str, int]:
    """The head's token ids and sizes: pad, bos, eos, unk, vocabulary size, maximum length."""
    tok = tok or text_tokenizer(info)
    return {
        "pad_id": tok.token_to_id(PAD),
        "bos_id": tok.token_to_id(BOS),
        "eos_id": tok.token_to_id(EOS),
        "unk_id": tok.token_to_id(UNK),
        "vocab_size": tok.get_vocab_size(),
        "max_length": int(info.state["max_length"]),
    }


def encode_texts(info: TaskInfo, cells: pd.Series) -> np.ndarray:
    tok = text_tokenizer(info)
    length, lower = int(info.state["max_length"]), bool(info.state["lowercase"])
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    out = np.zeros((len(cells), length), dtype=np.int64)
    present = np.flatnonzero(cells.notna().to_numpy())
    encoded = tok.encode_batch([_clean(str(cells.iloc[i]), lower) for i in present])
    for pos, enc in zip(present, encoded, strict=True):
        ids = [bos, *enc.ids[: length - 2], eos]
        out[pos, : len(ids)] = ids
    return out


def decode_texts(info: TaskInfo, ids: np.ndarray) -> list[str]:
    """Token ids (after or including BOS) -> words joined by spaces, cut at the first EOS."""
    tok = text_tokenizer(info)
    vocab = {i: w for w, i in tok.get_vocab().items()}
    sp = special_ids(info, tok)
    out = []
    for row in np.asarray(ids):
        words = []
        for i in row.tolist():
            if i == sp["eos_id"]:
                break
            if i in (sp["pad_id"], sp["bos_id"]):
                continue
            words.append(vocab.get(int(i), UNK))
        out.append(" ".join(words))
    return out


def word_ids(info: TaskInfo, texts: list[str]) -> list[np.ndarray]:
    """Words joined by spaces (as :func:`decode_texts` writes them) -> token id arrays."""
    tok = text_tokenizer(info)
    vocab = tok.get_vocab()
    unk = vocab[UNK]
    return [
        np.asarray([vocab.get(w, unk) for w in str(t).split()], dtype=np.int64)
        if isinstance(t, str)
        else np.zeros(0, dtype=np.int64)
        for t in texts
    ]
