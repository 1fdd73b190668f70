"""Small scikit-learn steps the references need and scikit-learn does not ship as such."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD


class AtMostColumns(TransformerMixin, BaseEstimator):
    """Projects onto ``k`` truncated-SVD components when there are more than ``k`` columns.

    A Cox model's Newton steps cost the square of the columns: thousands of TF-IDF terms or
    pixels would take minutes where a few dozen components take milliseconds.
    """

    def __init__(self, k: int = 32) -> None:
        self.k = k

    def fit(self, X: Any, y: Any = None) -> AtMostColumns:
        self.svd_ = (
            TruncatedSVD(n_components=self.k, random_state=0).fit(X)
            if X.shape[1] > self.k
            else None
        )
        return self

    def transform(self, X: Any) -> Any:
        return X if self.svd_ is None else self.svd_.transform(X)
