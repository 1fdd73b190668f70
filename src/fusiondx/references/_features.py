"""Feature transformers over a :class:`CaseTable` group, shared by the references.

``linear`` models get imputed, standardised numbers with missing indicators, one-hot categories
and TF-IDF text; ``trees`` get the numbers as they are (NaN is a value to histogram gradient
boosting) and ordinal category codes. Every transformer selects its columns from the whole
table, so several can be combined (``all_features``) or stacked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusiondx.references._table import CaseTable


def group_features(table: CaseTable, group: str, family: str) -> Any:
    """One group's columns (its presence column included) as a ColumnTransformer."""
    from sklearn.compose import ColumnTransformer

    return ColumnTransformer(group_parts(table, group, family), sparse_threshold=0.3)


def group_parts(table: CaseTable, group: str, family: str) -> list[tuple[str, Any, Any]]:
    """The (name, transformer, columns) parts of one group, for a ColumnTransformer."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    g = table.groups[group]
    numeric = g.numeric + ([g.present] if g.present else [])
    parts: list[tuple[str, Any, Any]] = []
    if g.text is not None:
        parts.append((f"{group}.tfidf", tfidf(), g.text))
    if numeric and family == "linear":
        imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        parts.append((f"{group}.num", make_pipeline(imputer, StandardScaler()), numeric))
    elif numeric:
        parts.append((f"{group}.num", "passthrough", numeric))
    if g.categorical and family == "linear":
        parts.append(
            (
                f"{group}.cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                g.categorical,
            )
        )
    elif g.categorical:
        parts.append(
            (
                f"{group}.cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                g.categorical,
            )
        )
    return parts


def tfidf() -> Any:
    """Word 1-2-grams and character 2-5-grams (within words), sublinear TF-IDF, fitted on train.

    Character n-grams carry what words miss in short clinical notes: abbreviations, negation
    prefixes, misspellings, other languages (PTB-XL's reports are mostly German)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=(1, 2), min_df=2, max_features=20000, sublinear_tf=True
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    min_df=2,
                    max_features=50000,
                    sublinear_tf=True,
                ),
            ),
        ]
    )
