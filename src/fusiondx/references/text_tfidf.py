"""Bag of words: TF-IDF of word and character n-grams, then a regularised linear model."""

from __future__ import annotations

from typing import Any

from fusiondx.references._base import Reference
from fusiondx.references._features import group_features
from fusiondx.references._table import CaseTable
from fusiondx.registry import register_reference


@register_reference(
    "tfidf", reference="Salton & Buckley, Inf. Process. Manag. 1988; Wang & Manning, ACL 2012"
)
class TfidfReference(Reference):
    """L2-regularised logistic regression on TF-IDF of word and character n-grams.

    Word 1-2-grams and character 2-5-grams, the vocabulary fitted on the training cases.

    On short clinical texts and few hundred cases this is hard to beat: it reads the phrases that
    carry the label without having to learn a language first.
    """

    inputs = "text"
    family = "linear"
    features_label = "TF-IDF n-grams"

    def features(self, table: CaseTable, group: str | None) -> Any:
        return group_features(table, str(group), self.family)
