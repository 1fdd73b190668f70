"""Clinical text (inline or .txt) -> padded token ids, with a tokenizer fitted on train only."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from fusiondx.data.manifest import resolve_path, some_cases
from fusiondx.data.preprocessors.base import Arrays, Preprocessor
from fusiondx.data.readers import is_text_path, read_text
from fusiondx.errors import DataError, line_of
from fusiondx.types import ModalitySpec

PAD, UNK = "[PAD]", "[UNK]"
_WHITESPACE = re.compile(r"\s+")


class TextPreprocessor(Preprocessor):
    """Cleans text and tokenizes it (WordPiece, BPE or whole words via HF tokenizers, or MiniLM's)."""

    kind = "text"

    def __init__(self, cfg: Any, root: Path) -> None:
        super().__init__(cfg, root)
        self.tokenizer: Tokenizer | None = None
        self.blank: list[tuple[int, str]] = []  # (position, case id) of texts holding nothing

    def _texts(
        self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series, errors: list[DataError]
    ) -> dict[int, str]:
        col, p = self.cfg.column, self.cfg.preprocessing
        out = {}
        for pos in np.flatnonzero(present):
            value = str(df[col].iloc[pos])
            loc = {"case_id": str(ids.iloc[pos]), "row": line_of(int(pos)), "column": col}
            try:
                if is_text_path(value):
                    value = str(resolve_path(value, self.root, **loc))
                out[int(pos)] = clean_text(read_text(value, root=self.root), lowercase=p.lowercase)
            except DataError as err:
                errors.append(err.at(**loc))
        return out

    def texts(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> dict[int, str]:
        """The cleaned text of each present case (what the tokenizer reads), by row position."""
        errors: list[DataError] = []
        out = self._texts(df, present, ids, errors)
        if errors:
            raise errors[0]
        return out

    def fit(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> None:
        p = self.cfg.preprocessing
        if p.tokenizer == "minilm":
            from fusiondx.pretrained import minilm_tokenizer_path

            tok = Tokenizer.from_file(str(minilm_tokenizer_path()))
        else:
            errors: list[DataError] = []
            texts = list(self._texts(df, present, ids, errors).values())
            if errors:
                raise errors[0]
            tok, trainer = _new_tokenizer(p.tokenizer, p.vocab_size, p.min_frequency)
            tok.train_from_iterator(texts, trainer=trainer)
            if p.tokenizer == "wordpiece":
                tok = _wordpiece_from_bpe(tok)
        self._configure(tok)

    def partial(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> dict[str, Any]:
        """The site's word counts after cleaning and pre-tokenisation (a bag of words over all
        its training texts, what the tokenizer trainer counts; no text leaves the site)."""
        if self.cfg.preprocessing.tokenizer == "minilm":
            return {}
        tok, _ = _new_tokenizer("word", 2, 1)
        counts: dict[str, int] = {}
        for text in self.texts(df, present, ids).values():
            for word, _span in tok.pre_tokenizer.pre_tokenize_str(text):
                counts[word] = counts.get(word, 0) + 1
        return {"words": counts}

    def merge(self, parts: list[dict[str, Any]]) -> None:
        p = self.cfg.preprocessing
        if p.tokenizer == "minilm":
            self.fit(pd.DataFrame(), np.zeros(0, dtype=bool), pd.Series([], dtype=str))
            return
        counts: dict[str, int] = {}
        for part in parts:
            for word, c in part.get("words", {}).items():
                counts[word] = counts.get(word, 0) + int(c)
        tok, trainer = _new_tokenizer(p.tokenizer, p.vocab_size, p.min_frequency)
        # Each word repeated as often as it was counted: the trainer counts the same words
        # as it would over the texts themselves.
        tok.train_from_iterator(
            (" ".join([w] * c) for w, c in sorted(counts.items())), trainer=trainer
        )
        if p.tokenizer == "wordpiece":
            tok = _wordpiece_from_bpe(tok)
        self._configure(tok)

    def _configure(self, tok: Tokenizer) -> None:
        length = self.cfg.preprocessing.max_length
        pad_id = tok.token_to_id(PAD)
        if pad_id != 0:
            raise DataError(
                f"The tokenizer's padding token has id {pad_id}, not 0.",
                fix="use a tokenizer whose [PAD] token is id 0",
            )
        tok.enable_truncation(max_length=length)
        tok.enable_padding(pad_id=0, pad_token=PAD, length=length)
        self.tokenizer = tok

    def spec(self) -> ModalitySpec:
        assert self.tokenizer is not None, "fit() or load_state() first"
        return ModalitySpec(
            self.name,
            "text",
            vocab_size=self.tokenizer.get_vocab_size(),
            max_length=self.cfg.preprocessing.max_length,
        )

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {"": ((self.cfg.preprocessing.max_length,), np.dtype(np.int64))}

    def transform(
        self,
        df: pd.DataFrame,
        present: np.ndarray,
        ids: pd.Series,
        out: Arrays,
        errors: list[DataError],
        advance: Callable[[int], None],
    ) -> None:
        assert self.tokenizer is not None, "fit() or load_state() first"
        texts = self._texts(df, present, ids, errors)
        # A report of only whitespace (an empty .txt, a cell of invisible characters) says
        # nothing: it is a missing report, carried in the mask, not an all-padding input.
        self.blank += [(pos, str(ids.iloc[pos])) for pos, t in texts.items() if not t]
        texts = {pos: t for pos, t in texts.items() if t}
        if texts:
            encoded = self.tokenizer.encode_batch(list(texts.values()))
            rows = np.fromiter(texts.keys(), dtype=np.int64)
            out[""][rows] = np.asarray([e.ids for e in encoded], dtype=np.int64)
        advance(int(present.sum()))

    def reset_found(self) -> None:
        self.blank = []

    def found(self) -> tuple[list[int], list[str]]:
        if not self.blank:
            return [], []
        n = len(self.blank)
        return [p for p, _ in self.blank], [
            f"modality '{self.name}': {n} {self.name} text(s) hold only whitespace (e.g. "
            f"{some_cases([c for _, c in self.blank])}); they are treated as missing, like an empty cell"
        ]

    def input_files(self, df: pd.DataFrame, present: np.ndarray, ids: pd.Series) -> list[Path]:
        col = self.cfg.column
        out = []
        for pos in np.flatnonzero(present):
            value = str(df[col].iloc[pos])
            if value.strip().lower().endswith(".txt") and "\n" not in value.strip():
                try:
                    out.append(
                        resolve_path(
                            value,
                            self.root,
                            column=col,
                            case_id=str(ids.iloc[pos]),
                            row=line_of(int(pos)),
                        )
                    )
                except DataError:
                    continue  # reported when decoding
        return out

    def state(self) -> dict[str, Any]:
        assert self.tokenizer is not None
        return {"tokenizer": self.tokenizer.to_str()}

    def load_state(self, state: dict[str, Any]) -> None:
        self._configure(Tokenizer.from_str(state["tokenizer"]))


def _new_tokenizer(kind: str, vocab_size: int, min_frequency: int) -> tuple[Tokenizer, Any]:
    special = [PAD, UNK]  # ids 0 and 1
    trainer: trainers.Trainer
    if kind == "wordpiece":
        # Trained as BPE with half the budget; _wordpiece_from_bpe adds the '##' pieces.
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=max(vocab_size // 2, 4),
            min_frequency=min_frequency,
            special_tokens=special,
            show_progress=False,
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=special,
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=special,
            show_progress=False,
        )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok, trainer


def _wordpiece_from_bpe(bpe: Tokenizer) -> Tokenizer:
    """A WordPiece tokenizer whose pieces are the learned BPE tokens, each also as a '##' piece.

    The tokenizers library's WordPieceTrainer breaks frequency ties in hash-map order, so the
    same texts give different vocabularies from one process to the next and a fixed seed would
    not give the same numbers. BPE training is deterministic; WordPiece's greedy longest-match
    over its tokens (word-initial, or '##' inside a word) then tokenizes like a trained
    WordPiece model, and the ids are assigned in sorted order.
    """
    pieces = {t for t in bpe.get_vocab() if t not in (PAD, UNK)}
    ordered = [PAD, UNK, *sorted(pieces | {f"##{t}" for t in pieces})]
    tok = Tokenizer(
        models.WordPiece(
            vocab={t: i for i, t in enumerate(ordered)},
            unk_token=UNK,
            continuing_subword_prefix="##",
        )
    )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def clean_text(text: str, *, lowercase: bool = True) -> str:
    """Normalise text for tokenisation.

    Applies Unicode NFKC normalisation (so e.g. full-width letters and ligatures become plain
    ones), turns whitespace control characters (tabs, line breaks) into spaces, drops other
    control and invisible format characters (e.g. zero-width spaces, byte-order marks),
    collapses runs of whitespace into one space and strips both ends.

    Args:
        text: the raw text.
        lowercase: also lower-case the text.

    Returns:
        The cleaned text.
    """
    text = unicodedata.normalize("NFKC", text)
    chars = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cc":
            # Keep the separation that tabs/newlines provide; drop the rest (NUL, BEL, ...).
            if ch.isspace():
                chars.append(" ")
        elif cat != "Cf":
            chars.append(ch)
    text = _WHITESPACE.sub(" ", "".join(chars)).strip()
    return text.lower() if lowercase else text
